"""Where the MCP tools' work runs.

- `LocalBackend` (`prover mcp`, stdio): this process's own Lean pool and prover model, each
  started on first use, so an agent that only verifies never loads a model. A single user on
  their machine needs no Redis, no API and no keys; a search runs in this process and stops the
  moment the agent cancels the call.
- `ServiceBackend` (`/mcp` of `prover serve`): the service's own Lean pool behind its fair
  verify queue (server/checks.py), and its Redis job queue for everything that needs the
  model (prove, complete, fill), run by `prover worker`s. A tool call is then exactly an HTTP
  API call: same keys (the jobs belong to the caller's key), same rate limit and body limit (the
  Guard sees `/mcp`), same budget cap, same queues, visible at `/v1/jobs/{id}` and on the web
  page; a cancelled tool call cancels its job.

Both answer with the JSON objects of the HTTP API (interface.md), so an agent sees one format.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio

from apps.mcp_server.fill_job import KIND as FILL_KIND
from apps.mcp_server.fill_job import fill_options, report_json
from prover.config import Settings
from prover.datasets import Problem
from prover.lean import CheckRequest, CheckResult, LeanPool
from prover.lean.environments import UnknownEnvironment, default_name, environment
from prover.model import Generator, create_generator
from prover.prompts import PromptMode

if TYPE_CHECKING:
    from search import SearchProgress
    from server.app import Service

Progress = Callable[[dict[str, Any]], None]  # {"samples", "budget", "tree_size", ...}


class BackendError(Exception):
    """A tool cannot do what was asked; the message is for the agent (what failed, what to do)."""


@dataclass(frozen=True)
class ProveSpec:
    problem: Problem
    search: str | None = None  # None: the prover profile's (PROVER_MODEL_PROFILE) default
    budget: int = 128
    concurrency: int = 32
    seed: int = 0
    lean_env: str | None = None  # None: the default environment

    def job_request(self) -> dict[str, Any]:
        """As `POST /v1/prove` queues it (server/app.py), so a worker runs it the same way
        (`lean_env` only when given, as there)."""
        p = self.problem
        request = {"formal_statement": p.formal_statement, "header": p.header,
                   "informal_prefix": p.informal_prefix, "search": self.search,
                   "budget": self.budget, "concurrency": self.concurrency, "seed": self.seed}
        if self.lean_env is not None:
            request["lean_env"] = self.lean_env
        return request


class Backend(ABC):
    settings: Settings

    @abstractmethod
    async def check(self, request: CheckRequest, lean_env: str | None = None,
                    who: str = "anonymous") -> CheckResult:
        """One check in the Lean environment named `lean_env` (None: the default); `who` is
        the caller (an API key's identity, or an address) where callers take turns."""

    @abstractmethod
    async def prove(self, spec: ProveSpec, owner: str, progress: Progress) -> dict[str, Any]:
        """The prove object plus `job_id`."""

    @abstractmethod
    async def complete(self, request: dict[str, Any], owner: str) -> dict[str, Any]:
        """`request` is a validated `POST /v1/complete` body; answers its result object."""

    @abstractmethod
    async def fill(self, text: str, options: dict[str, Any], owner: str,
                   progress: Progress) -> dict[str, Any]:
        """`fill_job.report_json` of the filled text."""

    @abstractmethod
    async def job(self, job_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def tree(self, job_id: str) -> dict[str, Any] | None: ...

    async def aclose(self) -> None:
        return None


# ---------------------------------------------------------------------- local


@dataclass
class _TreeFold:
    """A search's tree folded from its deltas (the format of `GET /v1/jobs/{id}/tree`)."""

    nodes: dict[int, dict[str, Any]] = field(default_factory=dict)
    stats: dict[int, list[Any]] = field(default_factory=dict)
    proof_path: list[int] | None = None
    expanded: int | None = None

    def add(self, delta: dict[str, Any]) -> None:
        if delta.get("reset"):
            self.nodes.clear()
            self.stats.clear()
        for node in delta.get("new_nodes") or ():
            self.nodes[int(node["id"])] = node
        for node_id, visits, value in delta.get("stats") or ():
            self.stats[int(node_id)] = [visits, value]
        if delta.get("proof_path"):
            self.proof_path = list(delta["proof_path"])
        if delta.get("expanded") is not None:
            self.expanded = int(delta["expanded"])

    def snapshot(self) -> dict[str, Any]:
        return {"reset": True, "expanded": self.expanded, "reward": None,
                "new_nodes": [self.nodes[k] for k in sorted(self.nodes)],
                "stats": [[k, *self.stats[k]] for k in sorted(self.stats)],
                "proof_path": self.proof_path}


@dataclass
class _LocalJob:
    id: str
    kind: str
    request: dict[str, Any]
    status: str = "running"
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    tree: _TreeFold | None = None

    def public(self) -> dict[str, Any]:
        return {"job_id": self.id, "kind": self.kind, "status": self.status,
                "progress": self.progress, "result": self.result, "error": self.error,
                "request": self.request}


class LocalBackend(Backend):
    """This process's pool and model, started lazily; jobs remembered in memory (the last
    `keep` of them) so the job resources work the same as with the service."""

    def __init__(self, settings: Settings, *, generator: Generator | None = None,
                 pool: LeanPool | None = None, keep: int = 100) -> None:
        """`pool`, if given, is the default Lean environment's (the caller's to close); the
        other environments' pools start when a call first names them."""
        self.settings = settings
        self._pools: dict[str, LeanPool] = {}
        self._given: LeanPool | None = pool
        if pool is not None:
            self._pools[default_name(settings)] = pool
        self._generator, self._own_generator = generator, False
        self._lock = asyncio.Lock()
        self._jobs: OrderedDict[str, _LocalJob] = OrderedDict()
        self._keep = keep

    async def pool(self, lean_env: str | None = None) -> LeanPool:
        """The pool of environment `lean_env` (None: the default), started on first use; an
        unknown name is a BackendError listing the known ones."""
        try:
            chosen = environment(self.settings, lean_env)
        except UnknownEnvironment as exc:
            raise BackendError(str(exc)) from None
        async with self._lock:
            if chosen.name not in self._pools:
                self._pools[chosen.name] = await LeanPool(
                    chosen.settings, workers=chosen.workers).start()
            return self._pools[chosen.name]

    async def generator(self) -> Generator:
        async with self._lock:
            if self._generator is None:
                generator = create_generator(self.settings)
                await generator.start()
                self._generator, self._own_generator = generator, True
            return self._generator

    async def aclose(self) -> None:
        if self._own_generator and self._generator is not None:
            await self._generator.close()
        await asyncio.gather(*(p.close() for p in self._pools.values() if p is not self._given),
                             return_exceptions=True)

    def _new_job(self, kind: str, request: dict[str, Any]) -> _LocalJob:
        job = _LocalJob(uuid.uuid4().hex, kind, request)
        self._jobs[job.id] = job
        while len(self._jobs) > self._keep:
            self._jobs.popitem(last=False)
        return job

    @contextlib.asynccontextmanager
    async def _running(self, job: _LocalJob) -> AsyncIterator[None]:
        try:
            yield
        except asyncio.CancelledError:
            job.status = "cancelled"
            raise
        except BaseException as exc:
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            raise

    async def check(self, request: CheckRequest, lean_env: str | None = None,
                    who: str = "anonymous") -> CheckResult:
        return await (await self.pool(lean_env)).check(request)

    async def prove(self, spec: ProveSpec, owner: str, progress: Progress) -> dict[str, Any]:
        from prover.profiles import get_profile
        from search import SearchConfig, search_with_answer

        profile = get_profile(self.settings.model_profile)
        algorithm = spec.search or profile.default_search
        pool, generator = await self.pool(spec.lean_env), await self.generator()
        job = self._new_job("prove", {**spec.job_request(), "search": algorithm})
        job.tree = _TreeFold() if algorithm in ("rmaxts", "bfs") else None
        verdicts: Counter[str] = Counter()

        def on_progress(p: SearchProgress) -> None:
            if p.verdict is not None:
                verdicts[p.verdict] += 1
            if p.tree_delta is not None and job.tree is not None:
                job.tree.add(p.tree_delta)
            job.progress = {"samples": p.samples, "budget": p.budget,
                            "tree_size": p.tree_size, "verdicts": dict(verdicts),
                            **({} if p.round is None else {"round": p.round,
                                                           "rounds": p.rounds})}
            progress(job.progress)

        config = SearchConfig(algorithm=algorithm, budget=spec.budget,  # type: ignore[arg-type]
                              concurrency=spec.concurrency, seed=spec.seed)
        async with self._running(job):
            result = await search_with_answer(
                spec.problem, generator, pool, config, params=profile.sampling(),
                mode=cast(PromptMode, self.settings.model_prompt), progress=on_progress,
                profile=profile)
        job.status, job.result = "succeeded", result.to_json()
        return {**job.result, "job_id": job.id}

    async def complete(self, request: dict[str, Any], owner: str) -> dict[str, Any]:
        from search.complete import CompletionRequest, complete

        pool, generator = await self.pool(request.get("lean_env")), await self.generator()
        result = await complete(CompletionRequest.from_json(request), generator, pool,
                                mode=cast(PromptMode, self.settings.model_prompt),
                                check_timeout=self.settings.lean_timeout)
        return result.to_json()

    async def fill(self, text: str, options: dict[str, Any], owner: str,
                   progress: Progress) -> dict[str, Any]:
        from prover.fill import Filler, sorries

        pool, generator = await self.pool(), await self.generator()
        job = self._new_job(FILL_KIND, {**options, "text": text})
        total = len(sorries(text))

        def on_progress(note: str) -> None:
            done = int(job.progress.get("samples", 0)) + 1
            job.progress = {"samples": done, "budget": total, "tree_size": 0, "note": note}
            progress(job.progress)

        filler = Filler(generator, pool, fill_options(options, self.settings.model_prompt),
                        self.settings, progress=on_progress)
        async with self._running(job):
            report = await filler.fill(text)
        job.status, job.result = "succeeded", report_json(report)
        return {**job.result, "job_id": job.id}

    async def job(self, job_id: str) -> dict[str, Any] | None:
        job = self._jobs.get(job_id)
        return job.public() if job else None

    async def tree(self, job_id: str) -> dict[str, Any] | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        return {**job.public(), "tree": job.tree.snapshot() if job.tree else None}


# ---------------------------------------------------------------------- the service


class ServiceBackend(Backend):
    """The service's pool and job queue; `attach` is called from the service's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: Service | None = None

    @contextlib.asynccontextmanager
    async def attached(self, service: Service) -> AsyncIterator[None]:
        self._service = service
        try:
            yield
        finally:
            self._service = None

    def _svc(self) -> Service:
        if self._service is None:
            raise BackendError("the service is starting; retry in a second")
        return self._service

    async def check(self, request: CheckRequest, lean_env: str | None = None,
                    who: str = "anonymous") -> CheckResult:
        """On the pool of `lean_env` of the API, through the same fair verify queue as
        `POST /v1/verify` (`who`'s turn among the callers waiting)."""
        from server.checks import check
        from server.errors import ApiError

        try:
            return await check(self._svc(), who, request, lean_env=lean_env)
        except ApiError as exc:  # an unknown lean_env, overloaded, or starting
            raise BackendError(exc.message) from None

    def _known_environment(self, lean_env: str | None) -> None:
        """Refuse a job naming an environment the service lacks now, not from a worker later."""
        from server.errors import ApiError

        try:
            self._svc().check_lean_env(lean_env)
        except ApiError as exc:
            raise BackendError(exc.message) from None

    async def _submit(self, kind: str, request: dict[str, Any], owner: str) -> str:
        from server.errors import ApiError

        service = self._svc()
        try:
            job, _ = await service.jobs().submit(kind, request, owner=owner)
        except ApiError as exc:
            raise BackendError(exc.message) from None
        service.metrics.jobs_submitted.labels("created").inc()
        return job.id

    async def _follow(self, job_id: str, progress: Progress | None,
                      timeout: float | None = None) -> dict[str, Any]:
        """The job's result, passing its progress events on; the job is cancelled if the
        caller gives up (the tool call was cancelled, or `timeout` passed)."""
        store = self._svc().jobs()
        final: dict[str, Any] | None = None

        async def follow() -> None:
            nonlocal final
            async for _, event in store.events(job_id):
                if event.get("type") == "progress" and progress is not None:
                    progress({k: v for k, v in event.items() if k != "type"})
                elif event.get("type") == "result":
                    final = event

        try:
            await asyncio.wait_for(follow(), timeout)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await store.cancel(job_id)
            if isinstance(exc, TimeoutError):
                depth = await store.queue_depth()
                raise BackendError(
                    f"no answer within {timeout:g} s (job {job_id}, cancelled; {depth} job(s) "
                    "waiting for a worker): is a `prover worker` running, with a free slot?"
                ) from None
            raise
        if final is None:
            raise BackendError(f"job {job_id} disappeared from Redis (expired?)")
        if final.get("status") == "succeeded" and isinstance(final.get("result"), dict):
            return {**final["result"], "job_id": job_id}
        if final.get("status") == "cancelled":
            raise BackendError(f"job {job_id} was cancelled (DELETE /v1/jobs/{job_id}?)")
        job = await store.get(job_id)
        raise BackendError(f"job {job_id} failed: "
                           f"{(job.error if job else None) or final.get('error') or 'no detail'}")

    async def prove(self, spec: ProveSpec, owner: str, progress: Progress) -> dict[str, Any]:
        self._known_environment(spec.lean_env)
        job_id = await self._submit("prove", spec.job_request(), owner)
        return await self._follow(job_id, progress)

    async def complete(self, request: dict[str, Any], owner: str) -> dict[str, Any]:
        from server.complete import API_GRACE_S, KIND

        self._known_environment(request.get("lean_env"))
        job_id = await self._submit(KIND, request, owner)
        return await self._follow(job_id, None, timeout=float(request["timeout"]) + API_GRACE_S)

    async def fill(self, text: str, options: dict[str, Any], owner: str,
                   progress: Progress) -> dict[str, Any]:
        job_id = await self._submit(FILL_KIND, {**options, "text": text}, owner)
        return await self._follow(job_id, progress)

    async def job(self, job_id: str) -> dict[str, Any] | None:
        job = await self._svc().jobs().get(job_id)
        if job is None:
            return None
        return {**job.to_public(), "kind": job.kind, "error": job.error,
                "progress": {**job.to_public()["progress"], **(job.progress or {})},
                "request": {k: v for k, v in job.request.items() if k != "text"}}

    async def tree(self, job_id: str) -> dict[str, Any] | None:
        view = await self._svc().jobs().live_view(job_id)
        if view is None:
            return None
        job, event_id, tree = view
        return {**job.to_public(), "kind": job.kind, "event_id": event_id, "tree": tree}
