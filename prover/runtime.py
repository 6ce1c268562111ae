"""Start the two engines a search needs, the prover model and the Lean pool, side by side.

Both take long to start (loading weights; importing Mathlib), so they start concurrently, and
either failing stops the other: a bad model path should not leave eight REPLs importing Mathlib.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from prover.config import Settings
from prover.lean import LeanPool
from prover.model import Generator, create_generator


class Runtime:
    def __init__(self, settings: Settings, generator: Generator | None = None,
                 pool: LeanPool | None = None) -> None:
        self.settings = settings
        self.generator = generator or create_generator(settings)
        self.pool = pool or LeanPool(settings)

    async def start(self) -> None:
        results = await asyncio.gather(self.generator.start(), self.pool.start(),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise errors[0]

    async def close(self) -> None:
        await asyncio.gather(self.generator.close(), self.pool.close(), return_exceptions=True)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
