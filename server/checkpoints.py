"""Writing to Redis from a search's synchronous callbacks without ever blocking the search.

The search reports progress after every sample and saves its RMaxTS tree every few dozen; both
calls are synchronous and happen on the event loop the search runs on. `LatestWriter` turns them
into background writes that coalesce: while one write is in flight, newer values replace each
other and only the latest is written next, and an optional minimum interval keeps a fast search
from turning into a stream of Redis round trips. `RedisCheckpoint` is the search's
`CheckpointStore` for a service job: the checkpoint lives in Redis under the job, so whichever
worker picks the job up next resumes the tree instead of starting over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from server.jobs import JobStore, Lease

T = TypeVar("T")

log = logging.getLogger("prover.worker")


class LatestWriter(Generic[T]):
    """Writes only the newest value pushed, one write at a time, at most once per `interval`
    seconds (the last value is always written: by the timer, or by `flush`)."""

    def __init__(self, write: Callable[[T], Awaitable[None]], interval: float = 0.0,
                 what: str = "value") -> None:
        self._write = write
        self.interval = interval
        self.what = what
        self._value: T | None = None
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self.writes = 0
        self.failures = 0

    def push(self, value: T) -> None:
        self._value = value
        self._dirty = True
        self._kick()

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def _kick(self) -> None:
        if self._busy() or self._timer is not None or not self._dirty:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self.interval - loop.time()
        if wait > 0:
            self._timer = loop.call_later(wait, self._on_timer)
        else:
            self._begin()

    def _on_timer(self) -> None:
        self._timer = None
        if not self._busy() and self._dirty:
            self._begin()

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(lambda _: self._kick())

    async def _run(self) -> None:
        while self._dirty:
            value = self._value
            self._dirty = False
            try:
                await self._write(value)  # type: ignore[arg-type]
                self.writes += 1
            except Exception as exc:  # a lost write is replaced by the next one
                self.failures += 1
                log.warning("writing the job's %s failed: %s: %s", self.what,
                            type(exc).__name__, exc)
            self._last = asyncio.get_running_loop().time()
            if self.interval > 0:
                return  # the done-callback schedules the next write after the interval

    async def flush(self) -> None:
        """Wait until the newest value pushed so far is written (or its write failed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._busy() or self._dirty:
            if not self._busy():
                self._begin()
            assert self._task is not None
            # Shielded: a caller cancelled while flushing must not cut the write in half.
            await asyncio.shield(self._task)

    def close(self) -> None:
        """Drop whatever is pending (the job is gone; nothing more may be written)."""
        self._dirty = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class RedisCheckpoint:
    """`search.checkpoint.CheckpointStore` backed by the job's checkpoint key.

    Saves are fenced by the job's lease: once the job was cancelled, finished or taken over by
    another worker, this worker's late saves are refused instead of clobbering the newer tree.
    """

    def __init__(self, store: JobStore, lease: Lease) -> None:
        self.store = store
        self.lease = lease
        self.where = f"redis:{store.checkpoint_key(lease.job_id)}"
        self._writer: LatestWriter[dict[str, Any]] = LatestWriter(self._write, what="checkpoint")

    async def load(self) -> bytes | None:
        return await self.store.load_checkpoint(self.lease.job_id)

    def save(self, data: dict[str, Any]) -> None:
        self._writer.push(data)

    async def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        await self.store.save_checkpoint(self.lease, text)

    async def flush(self) -> None:
        await self._writer.flush()

    async def delete(self) -> None:
        self._writer.close()
        await self.store.delete_checkpoint(self.lease.job_id)

    @property
    def writes(self) -> int:
        return self._writer.writes
