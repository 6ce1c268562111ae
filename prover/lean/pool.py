"""A pool of sandboxed REPL workers behind one `await pool.check(...)`.

Checks wait in a bounded FIFO (callers block when it is full: back-pressure, not an unbounded
backlog); each free worker takes the oldest one, and among free workers the one that already
holds the check's header wins, so with one header and W workers the header is elaborated W times
however many checks run. A worker that fails in any way is discarded and replaced, and the check it
held gets `timeout` or `system_error`, never a guessed verdict and never silence.

Before a check queues, a results cache may already know its verdict (prover/lean/results.py), and
an identical check already in flight (same environment, code, statement, timeout and options) is
joined instead of run twice: an RL step sends the same sample many times at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from prover.config import Settings
from prover.lean.checker import CheckRequest, PreparedCheck, prepare, run_check
from prover.lean.launch import Launch, build_launch
from prover.lean.process import ReplFailure, ReplTimeout
from prover.lean.results import (
    DEFINITIVE,
    MemoryResultCache,
    ResultCache,
    environment_identity,
    result_key,
)
from prover.lean.session import ReplSession
from prover.lean.verdict import CheckResult, Verdict

log = logging.getLogger(__name__)


class PoolClosed(RuntimeError):
    pass


@dataclass
class _Job:
    check: PreparedCheck
    future: asyncio.Future[CheckResult]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class _Flight:
    """One Lean run shared by every caller that asked for the same check while it ran."""

    task: asyncio.Task[CheckResult]
    waiters: int = 0


@dataclass
class _Worker:
    session: ReplSession
    busy: bool = False
    task: asyncio.Task[None] | None = None


class LeanPool:
    def __init__(
        self,
        settings: Settings,
        workers: int | None = None,
        launch: Launch | None = None,
        cache: ResultCache | None = None,
    ) -> None:
        """`cache`: where definitive verdicts are kept (the pool closes it); by default an
        in-process LRU of PROVER_RESULT_CACHE_SIZE entries (none when 0)."""
        self.settings = settings
        self.size = workers or settings.lean_workers
        self._launch = launch
        if cache is None and settings.result_cache_size > 0:
            cache = MemoryResultCache(settings.result_cache_size)
        self.cache = cache
        self._environment = environment_identity(settings)
        self._flights: dict[str, _Flight] = {}
        self.cache_hits = 0
        self.cache_errors = 0
        self.deduplicated = 0
        self._workers: list[_Worker] = []
        self._pending: deque[_Job] = deque()
        self._slots = asyncio.Semaphore(settings.lean_queue + self.size)
        self._closed = False
        self._leased: list[ReplSession] = []  # see lease()
        self.completed = 0
        self.verdicts: dict[str, int] = {}

    # ------------------------------------------------------------------ life cycle

    async def start(self, *, eager: bool = True) -> LeanPool:
        """Build the workers; with `eager`, start every REPL now so a bad command fails here."""
        launch = self._launch or build_launch(self.settings)
        self._workers = [
            _Worker(ReplSession(launch, self.settings, f"lean-{i}")) for i in range(self.size)
        ]
        if eager:
            try:
                await asyncio.gather(*(w.session.ensure_started() for w in self._workers))
            except BaseException:
                await self.close()
                raise
        return self

    async def close(self) -> None:
        """Stop taking work, fail what is queued, and end every REPL process."""
        self._closed = True
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(PoolClosed("the Lean pool was shut down"))
        tasks = [w.task for w in self._workers if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(w.session.close() for w in self._workers), return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self._leased), return_exceptions=True)
        if self.cache is not None:
            with contextlib.suppress(Exception):
                await self.cache.close()

    async def __aenter__(self) -> LeanPool:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ checking

    async def check(self, request: CheckRequest) -> CheckResult:
        """Check one proof. Blocks while the queue is full."""
        if self._closed:
            raise PoolClosed("the Lean pool is closed")
        started = time.monotonic()
        prepared = prepare(request, self.settings)
        if isinstance(prepared, CheckResult):
            self._count(prepared)
            return prepared
        verdict_key = result_key(self._environment, request.code, request.statement,
                                 allow_native_decide=self.settings.allow_native_decide,
                                 context=request.context)
        # Tactic infos are not kept, and their proof states belong to one caller.
        key = verdict_key if self.cache is not None and not request.all_tactics else None
        if key is not None and request.use_cache:
            hit = await self._cache_get(key)
            if hit is not None:
                self.cache_hits += 1
                self._count(hit)
                return replace(hit, cached=True, time_s=time.monotonic() - started)
        if request.all_tactics:
            return await self._queue(prepared, key)
        flight_key = f"{verdict_key}:{prepared.timeout!r}"
        flight = self._flights.get(flight_key)
        if flight is None or flight.waiters == 0:  # none, or abandoned by all its callers
            flight = _Flight(asyncio.ensure_future(self._queue(prepared, key)))
            self._flights[flight_key] = flight
            flight.task.add_done_callback(functools.partial(self._land, flight_key))
        else:
            self.deduplicated += 1
        flight.waiters += 1
        follower = flight.waiters > 1
        try:
            result = await asyncio.shield(flight.task)
            if follower:
                self._count(result)  # the leader's was counted when Lean answered
            return result
        except asyncio.CancelledError:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # nobody wants it any more: leave the queue
            raise

    def _land(self, flight_key: str, task: asyncio.Task[CheckResult]) -> None:
        flight = self._flights.get(flight_key)
        if flight is not None and flight.task is task:
            del self._flights[flight_key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure reaches the waiters, not the loop's log

    async def _queue(self, prepared: PreparedCheck, key: str | None) -> CheckResult:
        """Wait for a slot and a worker, run the check, and remember a definitive verdict."""
        async with self._slots:
            if self._closed:
                raise PoolClosed("the Lean pool is closed")
            job = _Job(prepared, asyncio.get_running_loop().create_future())
            self._pending.append(job)
            self._dispatch()
            try:
                result = await asyncio.shield(job.future)
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._pending.remove(job)  # not started yet: forget it
                job.future.cancel()
                raise
        if key is not None and result.verdict in DEFINITIVE:
            # Proof-state ids name states inside one REPL process: meaningless to a later caller.
            kept = replace(result, sorries=tuple(replace(s, proof_state=None)
                                                 for s in result.sorries))
            await self._cache_put(key, kept)
        return result

    async def _cache_get(self, key: str) -> CheckResult | None:
        assert self.cache is not None
        try:
            return await self.cache.get(key)
        except Exception as exc:  # a cache that fails is a miss, never a verdict
            self.cache_errors += 1
            log.warning("results cache lookup failed, checking with Lean: %s", exc)
            return None

    async def _cache_put(self, key: str, result: CheckResult) -> None:
        assert self.cache is not None
        try:
            await self.cache.put(key, result)
        except Exception as exc:
            self.cache_errors += 1
            log.warning("results cache store failed: %s", exc)

    def _choose(self, job: _Job) -> _Worker | None:
        idle = [w for w in self._workers if not w.busy]
        if not idle:
            return None
        key = job.check.split.key
        for pick in (
            lambda w: w.session.holds(key),
            lambda w: w.session.holds_imports(key),
            lambda w: w.session.proc is not None,
        ):
            for w in idle:
                if pick(w):
                    return w
        return idle[0]

    def _dispatch(self) -> None:
        while self._pending and not self._closed:
            job = self._pending[0]
            if job.future.done():
                self._pending.popleft()
                continue
            worker = self._choose(job)
            if worker is None:
                return
            self._pending.popleft()
            worker.busy = True
            worker.task = asyncio.ensure_future(self._run(worker, job))

    async def _run(self, worker: _Worker, job: _Job) -> None:
        session = worker.session
        started = time.monotonic()
        try:
            try:
                result = await run_check(session, job.check, self.settings)
                session.checks += 1
            except ReplTimeout as exc:
                await session.discard()
                result = CheckResult(
                    Verdict.TIMEOUT, error=f"Lean did not finish: {exc}",
                    time_s=time.monotonic() - started,
                )
            except ReplFailure as exc:
                await session.discard()
                log.warning("worker %s failed and is replaced: %s", session.name, exc)
                result = CheckResult(
                    Verdict.SYSTEM_ERROR, error=str(exc), time_s=time.monotonic() - started
                )
            except asyncio.CancelledError:
                await session.discard()
                raise
            except Exception as exc:  # a protocol surprise: never guess a verdict
                await session.discard()
                log.exception("worker %s: unexpected failure", session.name)
                result = CheckResult(
                    Verdict.SYSTEM_ERROR, error=f"verifier error: {exc}",
                    time_s=time.monotonic() - started,
                )
            self._count(result)
            if not job.future.done():
                job.future.set_result(result)
            reason = session.wants_recycling()
            if reason is not None:
                await session.recycle(reason)
        finally:
            if not job.future.done():
                job.future.set_exception(PoolClosed("the Lean pool was shut down mid-check"))
            worker.busy = False
            worker.task = None
            self._dispatch()

    def _count(self, result: CheckResult) -> None:
        self.completed += 1
        self.verdicts[result.verdict.value] = self.verdicts.get(result.verdict.value, 0) + 1

    def lease(self, name: str) -> ReplSession:
        """A REPL worker of this pool's kind, outside the check rotation, for one caller to use
        exclusively: tactic sessions must keep one process, since proof-state ids live in it.
        It starts on its first request; the pool ends it on close."""
        if self._closed:
            raise PoolClosed("the Lean pool is closed")
        session = ReplSession(self._launch or build_launch(self.settings), self.settings, name)
        self._leased.append(session)
        return session

    # ------------------------------------------------------------------ observation

    def stats(self) -> dict[str, Any]:
        sessions = [w.session for w in self._workers]
        return {
            "workers": self.size,
            "busy": sum(w.busy for w in self._workers),
            "queued": len(self._pending),
            "completed": self.completed,
            "verdicts": dict(self.verdicts),
            "header_elaborations": sum(s.header_elaborations for s in sessions),
            "restarts": sum(s.restarts for s in sessions),
            "recycles": sum(s.recycles for s in sessions),
            "pids": [s.proc.pid for s in sessions if s.proc is not None and s.proc.alive],
            "cache_hits": self.cache_hits,
            "cache_errors": self.cache_errors,
            "deduplicated": self.deduplicated,
        }
