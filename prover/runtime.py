"""Start the two engines a search needs, the prover model and the Lean pool, side by side.

Both take long to start (loading weights; importing Mathlib), so they start concurrently, and
either failing stops the other: a bad model path should not leave eight REPLs importing Mathlib.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from prover.config import Settings
from prover.lean import LeanPool
from prover.lean.environments import LeanEnvironments
from prover.model import Generator, create_generator


class Runtime:
    """`pool` is the default Lean environment's pool; `environments.pool_for(name)` gives the
    pool of the environment a job names (`lean_env`)."""

    def __init__(self, settings: Settings, generator: Generator | None = None,
                 pool: LeanPool | None = None,
                 environments: LeanEnvironments | None = None) -> None:
        self.settings = settings
        self.generator = generator or create_generator(settings)
        if environments is None:
            environments = (LeanEnvironments.around(settings, pool) if pool is not None
                            else LeanEnvironments(settings))
        self.environments = environments
        self.pool = environments.pool_for(None)

    async def start(self) -> None:
        results = await asyncio.gather(self.generator.start(), self.environments.start(),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise errors[0]

    async def close(self) -> None:
        await asyncio.gather(self.generator.close(), self.environments.close(),
                             return_exceptions=True)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
