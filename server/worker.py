"""`prover worker`: take jobs from the Redis queue and run them on one model and one Lean pool.

A worker reads the queue with XREADGROUP BLOCK (no polling), runs up to `worker_jobs` jobs at
once on its shared `Runtime`, and dispatches on the job's kind through `HANDLERS` ("prove" now;
evaluation problems later). Three background duties keep jobs safe while they run:

- heartbeat: every `job_claim_idle_s / 3` it re-claims its messages (XCLAIM JUSTID), so other
  workers see them as alive; the same call tells it when a job was cancelled or taken over;
- cancellation: a pub/sub subscription on the cancel channel stops a cancelled job's search at
  once, which frees the model and the Lean workers for other jobs;
- takeover: whenever it looks for work it first claims messages idle longer than
  `job_claim_idle_s` (their worker died), and resumes those jobs from their Redis checkpoints.

SIGTERM or SIGINT stops it gracefully: it takes no new jobs, cancels running searches (RMaxTS
writes its checkpoint on the way out), hands those jobs back to the queue, and exits 0. A second
signal stops it at once; the jobs it held are then taken over after `job_claim_idle_s`.

Logs are JSON lines on stderr: `ts`, `level`, `msg`, `job_id`, `worker`, and any extra fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import sys
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from redis.exceptions import RedisError

from prover.config import Settings
from prover.lean.environments import LeanEnvironments
from prover.runtime import Runtime
from server.checkpoints import LatestWriter, RedisCheckpoint
from server.jobs import Job, JobStatus, JobStore, Lease
from server.result_cache import RedisResultCache

T = TypeVar("T")

log = logging.getLogger("prover.worker")

# At most one progress write per job this often: a progress event, preceded by one `tree` event
# with every RMaxTS delta since the last write (short enough for a live view to look live).
PROGRESS_INTERVAL_S = 0.3
SHUTDOWN_GRACE_S = 60.0  # longest a graceful stop waits for searches to hand their jobs back
RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5, 10)  # backoff when Redis is unreachable
PRUNE_CONSUMERS_IDLE_MS = 3600 * 1000  # consumer entries silent this long, holding nothing
COMPACT_EVENTS_AFTER_S = 60.0  # a finished job's tree events are dropped this long after


# ---------------------------------------------------------------------- logging


class JsonLines(logging.Formatter):
    """One JSON object per line, so log shippers need no parsing rules."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "worker": getattr(record, "worker", None),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class JobLog(logging.LoggerAdapter[logging.Logger]):
    """Adds `worker` and `job_id` to every record, keeping a call's own `extra` fields."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def configure_logging() -> None:
    """JSON lines on stderr: the CLI's stderr handler gets the JSON format, or one is added when
    there is none; other handlers (a test runner's, an embedding program's) are left alone.
    The worker's own records pass at INFO whatever the root level, since they are its log."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    root = logging.getLogger()
    stderr = [h for h in root.handlers if type(h) is logging.StreamHandler
              and h.stream in (sys.stderr, sys.__stderr__)]
    for handler in stderr:
        handler.setFormatter(JsonLines())
    if not root.handlers:
        ours = _StderrHandler()
        ours.setFormatter(JsonLines())
        root.addHandler(ours)


# ---------------------------------------------------------------------- job handlers


class JobError(Exception):
    """A job cannot be done as asked; the message is shown to the user as the job's error."""


@dataclass
class JobContext:
    """What a handler gets: its job, the worker's engines, progress and checkpoint plumbing."""

    job: Job
    lease: Lease
    settings: Settings
    runtime: Runtime
    store: JobStore
    checkpoint: RedisCheckpoint
    log: JobLog
    _progress: LatestWriter[dict[str, Any]] = field(init=False, repr=False)
    _deltas: list[dict[str, Any]] = field(init=False, repr=False, default_factory=list)
    _latest: dict[str, Any] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        async def write(progress: dict[str, Any]) -> None:
            # Progress coalesces (the latest value is all a reader needs); tree deltas must
            # not, or a live view would miss nodes: every write takes all of them along.
            deltas, self._deltas = self._deltas, []
            try:
                if deltas:
                    await self.store.report_tree(self.lease, progress, deltas)
                else:
                    await self.store.report_progress(self.lease, progress)
            except BaseException:
                self._deltas[:0] = deltas  # not written: they go with the next write
                raise

        self._progress = LatestWriter(write, PROGRESS_INTERVAL_S, what="progress")

    def report_progress(self, *, samples: int, budget: int, tree_size: int,
                        **extra: Any) -> None:
        """Synchronous and cheap: the write happens in the background, coalesced."""
        self._latest = {"samples": samples, "budget": budget, "tree_size": tree_size, **extra}
        self._progress.push(self._latest)

    def report_tree(self, delta: dict[str, Any]) -> None:
        """Queue one RMaxTS tree delta (`search.tree.Tree.delta`); it is written, losslessly,
        with the next progress write, together with the others of that interval."""
        self._deltas.append(delta)

    async def flush_progress(self) -> None:
        await self._progress.flush()
        if self._deltas and self._latest is not None:  # deltas queued after the last push
            self._progress.push(self._latest)
            await self._progress.flush()


JobHandler = Callable[[JobContext], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, JobHandler] = {}


def register_handler(kind: str, handler: JobHandler) -> None:
    """Make jobs of `kind` runnable; the handler returns the job's result object."""
    HANDLERS[kind] = handler


async def prove_job(ctx: JobContext) -> dict[str, Any]:
    """A `POST /v1/prove` job: search for a proof; the result is the prove object."""
    from prover.problem_input import problem_from_statement
    from prover.profiles import get_profile
    from prover.prompts import PromptMode
    from search import CheckpointError, SearchConfig, SearchProgress, search_with_answer

    request = ctx.job.request
    problem = problem_from_statement(
        request["formal_statement"], header=request.get("header"),
        informal_prefix=request.get("informal_prefix") or "",
    )
    profile = get_profile(ctx.settings.model_profile)
    options: dict[str, Any] = {}
    for key in ("budget", "concurrency", "seed", "samples", "corrections", "rounds"):
        if request.get(key) is not None:
            options[key] = int(request[key])
    if request.get("tactics") is not None:  # bfs; absent from jobs queued before it existed
        options["tactics_per_expansion"] = int(request["tactics"])
    if request.get("tactic_prompt") is not None:
        options["prompt_format"] = str(request["tactic_prompt"])
    algorithm = request.get("search") or profile.default_search
    config = SearchConfig(algorithm=algorithm, **options)  # type: ignore[arg-type]

    verdicts: Counter[str] = Counter()  # of the samples this attempt at the job ran

    def progress(p: SearchProgress) -> None:
        if p.verdict is not None:
            verdicts[p.verdict] += 1
        if p.tree_delta is not None:
            ctx.report_tree(p.tree_delta)
        rounds = {} if p.round is None else {"round": p.round, "rounds": p.rounds}
        ctx.report_progress(samples=p.samples, budget=p.budget, tree_size=p.tree_size,
                            verdicts=dict(verdicts), **rounds)

    pool = ctx.runtime.environments.pool_for(request.get("lean_env"))  # UnknownEnvironment

    async def search() -> Any:
        return await search_with_answer(
            problem, ctx.runtime.generator, pool, config,
            params=profile.sampling(), mode=cast(PromptMode, ctx.settings.model_prompt),
            progress=progress, checkpoint_store=ctx.checkpoint, profile=profile,
        )

    try:
        result = await search()
    except CheckpointError as exc:
        # Written by another version of the program (an upgrade mid-job): start afresh rather
        # than fail a job the user cannot repair.
        ctx.log.warning("discarding an unusable checkpoint: %s", exc)
        await ctx.checkpoint.delete()
        result = await search()
    if result.resumed_from:
        ctx.log.info("resumed from a checkpoint", extra={"resumed_from": result.resumed_from})
    return {**result.to_json(), "resumed_from": result.resumed_from}


register_handler("prove", prove_job)

# Modules that define more job kinds, each with a `register()`; imported when a worker starts,
# so `prover worker` runs every kind without the server package importing them all up front.
HANDLER_MODULES = ("prover.evaluation.distributed", "server.complete")


def load_handlers(worker_log: logging.LoggerAdapter[logging.Logger] | None = None) -> None:
    for module_name in HANDLER_MODULES:
        try:
            module = importlib.import_module(module_name)
            module.register()
        except Exception as exc:  # a broken optional kind must not stop prove jobs
            (worker_log or log).warning("job kinds of %s are unavailable: %s: %s", module_name,
                                        type(exc).__name__, exc)


def describe_failure(exc: BaseException) -> tuple[str, bool]:
    """(the job's error message, whether it is our bug rather than the request's fault)."""
    from prover.lean.source import StatementError
    from search import CheckpointError, SearchSetupError

    if isinstance(exc, JobError | StatementError | SearchSetupError | CheckpointError):
        return str(exc), False
    if isinstance(exc, ValueError | KeyError | TypeError):
        return f"bad request: {exc}", False
    return f"internal error ({type(exc).__name__}): {exc}", True


# ---------------------------------------------------------------------- the worker


@dataclass
class _Active:
    """A message this worker is working on; `reason` says why its task is being cancelled."""

    msg_id: str
    job_id: str
    lease: Lease | None = None
    task: asyncio.Task[dict[str, Any]] | None = None
    reason: str | None = None  # "cancelled" (by the user), "shutdown", "lost" (taken over)

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self.task is not None:
            self.task.cancel()


class Worker:
    """One worker process's job loop: reads the queue while it has free slots, runs each job
    as its own task, and settles it (finish, acknowledge, or hand back) when the task ends."""

    def __init__(self, settings: Settings, store: JobStore, runtime: Runtime, name: str,
                 stop: asyncio.Event) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.name = name
        self.stop = stop
        self.slots = settings.worker_jobs
        self.claim_idle_ms = max(1, int(settings.job_claim_idle_s * 1000))
        # Idle workers wake this often to look for jobs of dead workers (XAUTOCLAIM).
        self.block_ms = max(100, self.claim_idle_ms // 2)
        self.heartbeat_s = settings.job_claim_idle_s / 3
        self.active: dict[str, _Active] = {}
        self.stopping = False
        self._runs: set[asyncio.Task[None]] = set()
        self._chores: set[asyncio.Future[None]] = set()  # best-effort clean-ups, see _later
        self._slot_free = asyncio.Event()
        self.log = JobLog(log, {"worker": name, "job_id": None})

    def _job_log(self, job_id: str) -> JobLog:
        return JobLog(log, {"worker": self.name, "job_id": job_id})

    async def run(self) -> None:
        self.log.info("worker started", extra={"slots": self.slots,
                                               "claim_idle_s": self.settings.job_claim_idle_s})
        with contextlib.suppress(RedisError, OSError):
            pruned = await self.store.prune_consumers(PRUNE_CONSUMERS_IDLE_MS)
            if pruned:
                self.log.info("forgot consumers of workers long gone",
                              extra={"consumers": pruned})
        helpers = [asyncio.create_task(self._heartbeats()),
                   asyncio.create_task(self._listen_for_cancellations())]
        reader = asyncio.create_task(self._read())
        try:
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait([reader, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if reader.done():
                reader.result()  # a bug in the reader: surface it
        finally:
            await self._shut_down(reader)
            for helper in [*helpers, *self._chores]:
                helper.cancel()
            await asyncio.wait([*helpers, *self._chores], timeout=5)
        self.log.info("worker stopped")

    # -------------------------------------------------------------- taking jobs

    async def _read(self) -> None:
        failures = 0
        # The flag as well as cancellation: should a cancellation be lost inside a client
        # library, the loop still ends after its current (bounded) read.
        while not self.stopping:
            while len(self.active) >= self.slots:
                self._slot_free.clear()
                await self._slot_free.wait()
            try:
                messages = await self.store.next_messages(
                    self.name, self.slots - len(self.active),
                    claim_idle_ms=self.claim_idle_ms, block_ms=self.block_ms)
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                await self._backoff(failures, "reading the queue", exc)
                continue
            if self.stopping:  # read as the stop came: hand them back unstarted
                break
            for msg_id, job_id in messages:
                active = _Active(msg_id, job_id)
                self.active[msg_id] = active
                run = asyncio.create_task(self._run_message(active))
                self._runs.add(run)
                run.add_done_callback(self._runs.discard)

    async def _backoff(self, failures: int, doing: str, exc: BaseException) -> None:
        delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1]
        self.log.warning("Redis error while %s: %s: %s (retrying in %s s)", doing,
                         type(exc).__name__, exc, delay)
        await asyncio.sleep(delay)  # backoff before reconnecting, not a poll

    async def _redis(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A job-state write that must not be lost to a short Redis outage (a restart): retried
        with backoff, then given up on (the message stays pending and the job is taken over)."""
        for failures in range(1, len(RETRY_DELAYS_S) + 1):
            try:
                return await call()
            except (RedisError, OSError) as exc:
                if failures == len(RETRY_DELAYS_S):
                    raise
                await self._backoff(failures, what, exc)
        raise AssertionError("unreachable")

    async def _run_message(self, active: _Active) -> None:
        job_log = self._job_log(active.job_id)
        try:
            lease = await self._redis("starting a job", lambda: self.store.start(
                active.msg_id, active.job_id, self.name))
            if lease is None:
                job_log.info("message skipped: the job is finished, cancelled or superseded",
                             extra={"msg_id": active.msg_id})
                return
            active.lease = lease
            job_log.info("job started", extra={"kind": lease.job.kind, "attempt": lease.token,
                                               "takeovers": lease.job.takeovers})
            if self.stopping and active.reason is None:
                active.reason = "shutdown"
            ctx = JobContext(job=lease.job, lease=lease, settings=self.settings,
                             runtime=self.runtime, store=self.store,
                             checkpoint=RedisCheckpoint(self.store, lease), log=job_log)
            active.task = asyncio.create_task(self._execute(ctx))
            if active.reason is not None:
                active.task.cancel()
            await asyncio.wait([active.task])
            await self._settle(active, lease, job_log)
            self._later(self._compact_events(lease, job_log))
        except Exception:
            job_log.exception("could not record the job's outcome; another worker will take "
                              "it over")
        finally:
            del self.active[active.msg_id]
            self._slot_free.set()

    async def _execute(self, ctx: JobContext) -> dict[str, Any]:
        handler = HANDLERS.get(ctx.job.kind)
        if handler is None:
            raise JobError(f"unknown job kind {ctx.job.kind!r}")
        try:
            return await handler(ctx)
        finally:
            await ctx.flush_progress()  # the last progress event precedes the result

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _compact_events(self, lease: Lease, job_log: JobLog) -> None:
        """Drop a finished tree search's (RMaxTS, best-first) `tree` events (its tree snapshot
        keeps the tree), a while after it finished so that viewers still reading the stream get
        them first. Best effort: a worker that stops before then leaves them to expire with the
        job."""
        if lease.job.kind != "prove":
            return
        from prover.profiles import get_profile

        search = (lease.job.request.get("search")
                  or get_profile(self.settings.model_profile).default_search)
        if search not in ("rmaxts", "bfs"):  # no tree: sampling, repair
            return
        await asyncio.sleep(COMPACT_EVENTS_AFTER_S)
        try:
            dropped = await self.store.drop_tree_events(lease.job_id)
        except (RedisError, OSError) as exc:
            job_log.warning("could not drop the tree events of a finished job: %s", exc)
            return
        if dropped:
            job_log.info("tree events dropped from the finished job's stream",
                         extra={"events": dropped})

    async def _settle(self, active: _Active, lease: Lease,
                      job_log: JobLog) -> None:
        task = active.task
        assert task is not None
        if task.cancelled():
            reason = active.reason or "shutdown"
            if reason == "cancelled":
                await self._redis("acknowledging a cancelled job",
                                  lambda: self.store.release(lease))
                job_log.info("job cancelled; search stopped")
            elif reason == "shutdown":
                outcome = await self._redis("handing a job back",
                                            lambda: self.store.requeue(lease))
                job_log.info("job handed back to the queue", extra={"outcome": outcome})
            else:
                job_log.warning("job taken over by another worker; stopped here")
            return
        exc = task.exception()
        if exc is None:
            result = task.result()
            outcome = await self._redis("storing a result", lambda: self.store.finish(
                lease, JobStatus.SUCCEEDED, result=result))
            if outcome == "lost":
                job_log.warning("result discarded: another worker holds the job now")
            else:
                job_log.info("job succeeded", extra={"proved": result.get("proved"),
                                                     "samples": result.get("samples")})
            return
        message, ours = describe_failure(exc)
        if ours:
            job_log.error("job failed: %s", message, extra={
                "traceback": "".join(traceback.format_exception(exc))})
        else:
            job_log.info("job failed: %s", message)
        await self._redis("storing a failure", lambda: self.store.finish(
            lease, JobStatus.FAILED, result=None, error=message))

    # -------------------------------------------------------------- background duties

    async def _heartbeats(self) -> None:
        """Re-claim held messages so no other worker takes them over; the periodic timer is
        the protocol (idle time is what marks a worker dead), not a poll for state."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            for active in list(self.active.values()):
                lease = active.lease
                if lease is None:
                    continue
                try:
                    beat = await self.store.heartbeat(lease, self.name)
                except (RedisError, OSError) as exc:
                    self.log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
                    break
                if beat == "lost":
                    active.stop("lost")
                elif beat == "ended":
                    active.stop("cancelled")

    async def _listen_for_cancellations(self) -> None:
        failures = 0
        while True:
            try:
                async for job_id in self.store.cancellations():
                    failures = 0
                    for active in list(self.active.values()):
                        if active.job_id == job_id:
                            self._job_log(job_id).info("cancel requested")
                            active.stop("cancelled")
            except (RedisError, OSError) as exc:
                failures += 1
                await self._backoff(failures, "listening for cancellations", exc)

    # -------------------------------------------------------------- graceful stop

    async def _shut_down(self, reader: asyncio.Task[None]) -> None:
        self.stopping = True
        reader.cancel()
        await asyncio.wait([reader], timeout=max(5.0, 2 * self.block_ms / 1000))
        if self.active:
            self.log.info("stopping: handing running jobs back",
                          extra={"jobs": sorted(a.job_id for a in self.active.values())})
        for active in list(self.active.values()):
            active.stop("shutdown")
        if self._runs:
            _, late = await asyncio.wait(set(self._runs), timeout=SHUTDOWN_GRACE_S)
            if late:
                self.log.warning("jobs did not stop in time; they will be taken over",
                                 extra={"jobs": len(late)})
        # Messages delivered by a read that was interrupted above were never started: put
        # them back rather than leave them to wait out the claim timeout.
        with contextlib.suppress(RedisError, OSError):
            for msg_id, job_id in await self.store.pending_of(self.name):
                if any(a.msg_id == msg_id for a in self.active.values()):
                    continue
                outcome = await self.store.requeue_message(msg_id, job_id)
                self._job_log(job_id).info("unstarted message handed back",
                                           extra={"outcome": outcome})
            await self.store.remove_consumer(self.name)


async def _start_runtime(runtime: Runtime, stop: asyncio.Event) -> bool:
    """Start the model and Lean pool unless told to stop first; True when started."""
    starting = asyncio.create_task(runtime.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if starting.done():
        starting.result()
        return True
    starting.cancel()
    await asyncio.gather(starting, return_exceptions=True)
    await runtime.close()
    return False


async def _wait_for_redis(store: JobStore, stop: asyncio.Event,
                          worker_log: JobLog) -> bool:
    """Create the queue's consumer group, waiting for Redis to come up (a worker may start
    before it, e.g. in docker compose); False when told to stop meanwhile."""
    failures = 0
    while not stop.is_set():
        attempt = asyncio.create_task(store.ensure_group())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([attempt, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not attempt.done():  # told to stop while the client was still retrying
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            return False
        try:
            attempt.result()
            return True
        except (RedisError, OSError) as exc:
            failures += 1
            delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1]
            worker_log.warning("Redis is not reachable: %s (retrying in %s s)", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return False


async def run_worker(settings: Settings, name: str | None = None, *,
                     runtime: Runtime | None = None, stop: asyncio.Event | None = None) -> None:
    """Run a worker until `stop` is set (or, without `stop`, until SIGTERM/SIGINT).

    Without `runtime` the worker starts its own model and Lean pool and closes them at the end;
    a given runtime is the caller's, already started, and left open.
    """
    configure_logging()
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    worker_log = JobLog(log, {"worker": name, "job_id": None})
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    forced = 0  # exit status of a stop forced by a second signal
    if stop is None:
        stop = asyncio.Event()
        main = asyncio.current_task()

        def on_signal(sig: signal.Signals) -> None:
            nonlocal forced
            assert stop is not None
            if stop.is_set():
                worker_log.warning("second %s: stopping at once; running jobs will be taken "
                                   "over after the claim time", sig.name)
                forced = 128 + sig.value
                if main is not None:
                    main.cancel()
                return
            worker_log.info("%s: finishing up (send it again to stop at once)", sig.name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
            signals.append(sig)
    load_handlers(worker_log)
    store = JobStore.from_settings(settings)
    try:
        if not await _wait_for_redis(store, stop, worker_log):
            return
        own_runtime = runtime is None
        if runtime is None:
            runtime = Runtime(settings, environments=LeanEnvironments(
                settings, cache=RedisResultCache.from_settings))
            worker_log.info("starting the model and the Lean pool")
            if not await _start_runtime(runtime, stop):
                return
        try:
            await Worker(settings, store, runtime, name, stop).run()
        finally:
            if own_runtime:
                await runtime.close()
    except asyncio.CancelledError:
        if forced:
            raise SystemExit(forced) from None  # an exit status, not a traceback
        raise
    finally:
        await store.close()
        for sig in signals:
            loop.remove_signal_handler(sig)
