"""The HTTP service: `/v1/verify` on a Lean pool of its own, `/v1/prove` jobs through Redis.

Verification is short and synchronous, so it runs right here, on this process's pool, at most
`settings.verify_slots` checks at once; more wait in a bounded queue shared fairly between API
keys (server/admission.py), and only a full queue, or a wait past its limit, is answered 503 with
Retry-After. Batches (server/batch.py) and the Kimina-compatible routes (server/kimina.py) go
through the same queue. Proof search is long, so it is a job: the API validates it, puts it in
Redis and returns 202; `prover worker` processes (any number, anywhere) run it, and clients follow
it by polling `GET /v1/jobs/{id}` or, better, by the Server-Sent Events of `/v1/jobs/{id}/events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from starlette.routing import BaseRoute

from prover.config import Settings
from prover.lean import CheckRequest, LeanPool, PoolClosed, StatementError
from prover.lean.environments import LeanEnvironments, UnknownEnvironment, default_name
from prover.problem_input import normalise_statement
from prover.profiles import get_profile
from server import batch, errors, kimina
from server.admission import Admission
from server.auth import Authenticator
from server.checks import check, principal_of
from server.complete import router as complete_router
from server.disconnect import ClientGone, unless_client_leaves
from server.errors import ApiError, retry_after, validation_error
from server.jobs import Job, JobStore
from server.limits import RateLimiter
from server.logs import configure_logging
from server.metrics import CONTENT_TYPE, Metrics
from server.middleware import Guard, RequestContext
from server.models import (
    Health,
    HealthStatus,
    JobCreated,
    JobView,
    LeanEnvironmentView,
    ProveRequest,
    VerifyRequest,
    VerifyResponse,
)
from server.result_cache import RedisResultCache
from server.sessions import router as sessions_router
from server.sse import event_stream
from server.web import install_web

log = logging.getLogger("server.app")
T = TypeVar("T")

HEARTBEAT_S = 15.0  # SSE comment interval: well under the usual 60 s proxy idle timeout
REDIS_PROBE_S = 2.0  # /healthz and /metrics must answer even when Redis hangs
DEFAULT_BUDGET = 128  # as `prover prove`
_JOB_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_EVENT_ID = re.compile(r"\d{1,20}(-\d{1,20})?")


@dataclass
class Service:
    """What the routes share; `pool` and `store` exist from lifespan start to lifespan end."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    heartbeat_s: float
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    pool: LeanPool | None = None  # the default Lean environment's pool
    store: JobStore | None = None
    startup_error: BaseException | None = None
    environments: LeanEnvironments | None = None

    def lean(self, lean_env: str | None = None) -> LeanPool:
        """The pool of the Lean environment a request names (`lean_env`; None: the default).
        An unknown name is a 422 on field `lean_env` that lists the known ones."""
        if self.pool is None or self.environments is None:
            raise ApiError(503, "unavailable", "the service is starting", headers=retry_after(1))
        try:
            return self.environments.pool_for(lean_env)
        except UnknownEnvironment as exc:
            raise validation_error(["lean_env"], str(exc)) from None

    def check_lean_env(self, lean_env: str | None) -> None:
        """Refuse an unknown `lean_env` now (422), before a job that names it is queued."""
        from prover.lean.environments import resolve_name

        try:
            resolve_name(self.settings, lean_env)
        except UnknownEnvironment as exc:
            raise validation_error(["lean_env"], str(exc)) from None

    def jobs(self) -> JobStore:
        if self.store is None:
            raise ApiError(503, "unavailable", "the service is starting", headers=retry_after(1))
        return self.store

    def pool_stats(self) -> dict[str, Any]:
        """Every environment's pool together."""
        return self.environments.total_stats() if self.environments is not None else {}


async def _service(request: Request) -> Service:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    # (two lock round trips) per request for one attribute read.
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(_service)]


@dataclass(frozen=True)
class Addon:
    """Routes an application adds to the service (the MCP endpoint), served behind the same API
    keys, rate limit and body limit as `/v1`. The service knows nothing of what they do: the
    `prover serve` command composes them in, so this package never imports an application.
    `lifespan(service)` runs inside the service's own, once its pool and job store are up."""

    paths: frozenset[str]  # exact paths the Guard protects, e.g. {"/mcp"}
    routes: Sequence[BaseRoute]
    lifespan: Callable[[Service], AbstractAsyncContextManager[None]] | None = None


# ------------------------------------------------------------------------------ app


def create_app(settings: Settings, *, pool: LeanPool | None = None,
               store: JobStore | None = None, heartbeat_s: float = HEARTBEAT_S,
               environments: LeanEnvironments | None = None,
               addons: Sequence[Addon] = ()) -> FastAPI:
    """The ASGI app. A `pool` (the default Lean environment's), `environments` or `store`
    passed in is the caller's to start and close; what the app creates itself it starts on
    lifespan start and closes on lifespan end. Every pool the app builds itself shares
    verdicts through the Redis results cache (keyed by its environment, among the rest)."""
    service = Service(settings=settings, metrics=Metrics(), admission=Admission(
        settings.verify_slots, settings.verify_queue, settings.verify_queue_wait_s),
        heartbeat_s=heartbeat_s)
    service.metrics.watch_pool(service.pool_stats)
    service.metrics.verify_queued.set_function(lambda: service.admission.queued)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_pool = own_store = False
        try:
            if environments is not None:
                service.environments = environments
            else:  # the pool passed in is the caller's; the other environments' are ours
                own = LeanEnvironments(settings, {} if pool is None else {
                    default_name(settings): pool}, cache=RedisResultCache.from_settings)
                service.environments = await own.start(given=False)
                own_pool = True
            service.pool = service.environments.pool_for(None)
            if store is None:
                service.store = JobStore.from_settings(settings)
                own_store = True
            else:
                service.store = store
        except BaseException as exc:
            service.startup_error = exc
            if own_pool and service.environments is not None:
                await service.environments.close(given=False)
            raise
        log.info("service ready", extra={"lean_workers": service.pool.size,
                                         "verify_slots": service.admission.slots})
        try:
            async with AsyncExitStack() as addon_lifespans:
                for addon in addons:
                    if addon.lifespan is not None:
                        await addon_lifespans.enter_async_context(addon.lifespan(service))
                yield
        finally:
            service.draining.set()
            if own_store and service.store is not None:
                await service.store.close()
            if own_pool and service.environments is not None:
                await service.environments.close(given=False)
            service.pool = service.store = None
            service.environments = None

    app = FastAPI(
        title="lean-prover-service",
        version="0.1.0",
        summary="Lean 4 theorem proving: check proofs, search for proofs (DeepSeek-Prover-V1.5).",
        description=_DESCRIPTION,
        lifespan=lifespan,
        responses=errors.responses(500),
    )
    app.state.service = service
    errors.install_handlers(app)
    app.include_router(_v1_router())
    app.include_router(complete_router())  # POST /v1/complete, for the editor tactics
    app.include_router(batch.router())  # POST /v1/verify/batch
    app.include_router(kimina.router())  # Kimina Lean Server's /api/check, /verify, /health
    app.include_router(sessions_router())  # /v1/sessions: tactic sessions (server/sessions.py)
    app.include_router(_ops_router())
    install_web(app)  # the page at `/`, its files, and the endpoints it needs (server/web.py)
    for addon in addons:
        app.router.routes.extend(addon.routes)
    # Added last = outermost: RequestContext sees every request, Guard every /v1 request.
    app.add_middleware(Guard, auth=Authenticator(settings.api_keys),
                       limiter=RateLimiter(settings.api_rate_limit),
                       max_body_bytes=settings.api_max_body_kb * 1024,
                       batch_body_bytes=settings.api_max_batch_body_mb << 20,
                       drain_bytes=settings.api_drain_mb << 20,
                       also_guard=kimina.PATHS,
                       app_paths=frozenset().union(*(addon.paths for addon in addons)))
    app.add_middleware(RequestContext, metrics=service.metrics, router=app.router)
    return app


_DESCRIPTION = """
Errors are always JSON `{"error": {"code", "message", "request_id"}}` with a fitting status.
When `PROVER_API_KEYS` is set every `/v1/*` request needs `Authorization: Bearer KEY`; every
`/v1/*` request counts against a per-key (or, without keys, per-address) rate limit of
`PROVER_API_RATE_LIMIT` requests per minute. Send `X-Request-ID` to correlate logs; it is echoed
(or one is made up) on every response.
"""


# ------------------------------------------------------------------------------ /v1


def _v1_router() -> APIRouter:
    # The bearer scheme is documented here; it is enforced by the Guard middleware, before
    # any body is read (auto_error=False: this dependency itself never refuses anything).
    router = APIRouter(prefix="/v1", dependencies=[Depends(HTTPBearer(auto_error=False))])

    @router.post(
        "/verify", response_model=VerifyResponse, tags=["verify"],
        summary="Check one complete Lean file",
        responses=errors.responses(401, 413, 422, 429, 503),
    )
    async def verify(body: VerifyRequest, request: Request, service: ServiceDep) -> Any:
        """Check a proof now, on this server's Lean pool, and return the verify object
        (`verdict`, `messages`, `sorries`, `axioms`, `rejection`, `error`, `time_s`, `cached`).

        At most PROVER_VERIFY_CONCURRENCY checks run at once; more wait their turn (round-robin
        between API keys) in a queue of PROVER_VERIFY_QUEUE; a full queue, or a wait expected
        past PROVER_VERIFY_QUEUE_WAIT_S, is 503 `overloaded` with Retry-After. A `statement`
        that is not a theorem declaration is 422."""
        settings = service.settings
        if body.timeout is not None and body.timeout > settings.lean_timeout:
            raise validation_error(["timeout"], f"must be at most {settings.lean_timeout:g} "
                                   "seconds (PROVER_LEAN_TIMEOUT)")
        try:
            wanted = CheckRequest(code=body.code, statement=body.statement, timeout=body.timeout,
                                  use_cache=body.cache, context=body.context)
            result = await unless_client_leaves(
                request, check(service, principal_of(request), wanted, lean_env=body.lean_env))
        except StatementError as exc:
            raise validation_error(["statement"], str(exc)) from None
        except PoolClosed:
            raise ApiError(503, "unavailable", "the verifier is shutting down",
                           headers=retry_after(5)) from None
        except ClientGone:
            raise ApiError(499, "client_closed_request", "the client went away") from None
        return result.to_json()

    @router.post(
        "/prove", status_code=202, response_model=JobCreated, tags=["jobs"],
        summary="Start a proof search job",
        responses={
            200: {"model": JobCreated, "description": "Idempotency-Key seen before with the same "
                  "request: the job the first request created (not a new one)"},
            202: {"description": "job created and queued; `Location` names it"},
            **errors.responses(401, 409, 413, 422, 429, 503),
        },
    )
    async def prove(
        body: ProveRequest, request: Request, response: Response, service: ServiceDep,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", pattern=r"^[\x21-\x7e]{1,255}$",
            description="retry-safe submission: the same key (per API key) returns the job "
            "the first request created, with status 200 instead of 202")] = None,
    ) -> JobCreated:
        """Queue a search for a proof of `formal_statement`; a `prover worker` runs it.
        Answers 202 `{"job_id"}`; follow the job at `/v1/jobs/{job_id}` or its `/events`."""
        settings = service.settings
        budget = body.budget if body.budget is not None else min(DEFAULT_BUDGET,
                                                                 settings.max_budget)
        if budget > settings.max_budget:
            raise validation_error(["budget"], f"must be at most {settings.max_budget} "
                                   "(PROVER_MAX_BUDGET)")
        try:
            normalise_statement(body.formal_statement)
        except StatementError as exc:
            raise validation_error(["formal_statement"], str(exc)) from None
        service.check_lean_env(body.lean_env)
        job_request = {
            "formal_statement": body.formal_statement, "header": body.header,
            "informal_prefix": body.informal_prefix, "search": body.search, "budget": budget,
            "concurrency": body.concurrency, "seed": body.seed,
            **{k: getattr(body, k) for k in ("samples", "corrections", "rounds", "tactics",
                                             "tactic_prompt")
               if getattr(body, k) is not None},
        }
        if body.lean_env is not None:  # absent stays absent: old idempotent retries still match
            job_request["lean_env"] = body.lean_env
        principal = str(getattr(request.state, "principal", ""))
        owner = principal if principal.startswith("key:") else ""
        job, created = await service.jobs().submit(
            "prove", job_request, idempotency_key=idempotency_key, owner=owner)
        if not created and any(job.request.get(k) != v for k, v in job_request.items()):
            raise ApiError(409, "idempotency_conflict", "this Idempotency-Key was already used "
                           f"for a different request (job {job.id})")
        service.metrics.jobs_submitted.labels("created" if created else "replayed").inc()
        response.status_code = 202 if created else 200
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return JobCreated(job_id=job.id)

    @router.get("/jobs/{job_id}", response_model=JobView, tags=["jobs"],
                summary="A job's status, progress and result",
                responses=errors.responses(401, 404, 422, 429, 503))
    async def get_job(job_id: str, service: ServiceDep) -> Any:
        """`{"job_id", "status", "progress": {"samples", "budget", "tree_size"},
        "result": null | prove object}`; `result` is set once the job succeeded."""
        return (await _job(service, job_id)).to_public()

    @router.delete("/jobs/{job_id}", response_model=JobView, tags=["jobs"],
                   summary="Cancel a job",
                   responses=errors.responses(401, 404, 422, 429, 503))
    async def cancel_job(job_id: str, service: ServiceDep) -> Any:
        """Cancel a queued or running job; returns the job. Cancelling a finished job changes
        nothing (the answer shows its final status), so DELETE is safe to retry."""
        job = await service.jobs().cancel(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        return job.to_public()

    @router.get(
        "/jobs/{job_id}/events", tags=["jobs"], summary="Follow a job (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={
            200: {"description": "`text/event-stream`: per event `id: <event id>` and one "
                  "`data: <JSON>` line (`type` = `progress`, ..., the last one `result`); "
                  "`: heartbeat` comments while idle. Reconnect with `Last-Event-ID` to resume."
                  "\n\nEvent types: `status` `{status}`; `progress` `{samples, budget, "
                  "tree_size, verdicts}` (`verdicts`: counts per verdict of the samples run); "
                  "`tree` `{deltas: [...]}` (RMaxTS only: every sample's change to the tree, "
                  "batched every 0.3 s, none dropped; each delta `{expanded, reward, new_nodes: "
                  "[{id, parent, state, depth}], stats: [[id, visits, value]], proof_path, "
                  "reset?}`, a `reset` one carrying the whole tree); `result` `{status, result, "
                  "error?}`. The stream keeps the last ~1000 events: a viewer that joins late "
                  "starts from `GET /v1/jobs/{id}/tree` and follows `?after=<its event_id>`.",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **errors.responses(401, 404, 422, 429, 503),
        },
    )
    async def job_events(
        job_id: str, service: ServiceDep,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        after: Annotated[str | None, Query(description="resume after this event id (as "
                                           "Last-Event-ID, which wins)")] = None,
    ) -> StreamingResponse:
        """Every event of the job from the start (or after `Last-Event-ID`), then live ones;
        the stream ends after the result event."""
        await _job(service, job_id)
        resume = last_event_id or after or "0"
        if not _EVENT_ID.fullmatch(resume):
            raise validation_error(["Last-Event-ID"], "not an event id (as `1712345678901-0`)")
        stream = event_stream(service.jobs().events(job_id, after=resume),
                              heartbeat_s=service.heartbeat_s, draining=service.draining)
        return StreamingResponse(stream, media_type="text/event-stream", headers={
            "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


async def _job(service: Service, job_id: str) -> Job:
    job = await service.jobs().get(job_id) if _JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return job


# ------------------------------------------------------------------------------ ops


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health, summary="Liveness and readiness",
                responses={503: {"model": Health, "description": "Redis unreachable "
                                 "(`degraded`) or shutting down (`draining`)"}})
    async def healthz(service: ServiceDep) -> JSONResponse:
        """Open (no key). 200 `ok` when the pool is up and Redis answers; 503 otherwise, so a
        load balancer stops sending work here."""
        redis_ok = False
        if service.store is not None:
            with contextlib.suppress(Exception):
                redis_ok = bool(await asyncio.wait_for(service.store.ping(), REDIS_PROBE_S))
        status: HealthStatus = (
            "draining" if service.draining.is_set() else
            "ok" if redis_ok and service.pool is not None else "degraded")
        envs = service.environments
        body = Health(status=status, lean_workers=envs.size if envs is not None else 0,
                      model_backend=service.settings.model_backend,
                      model_profile=service.settings.model_profile,
                      default_search=get_profile(service.settings.model_profile).default_search,
                      redis=redis_ok,
                      environments=[  # no workspace paths: /healthz is open to anyone
                          LeanEnvironmentView(**{k: v for k, v in e.items() if k != "workspace"})
                          for e in envs.describe()] if envs is not None else [])
        return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                responses={200: {"description": "Prometheus text format",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics(service: ServiceDep) -> Response:
        """Open (no key). Requests by route and status, latencies, verify slots, the Lean pool
        (busy/idle workers, verdicts), and the job queue in Redis (depth, jobs by status)."""
        m = service.metrics
        try:
            if service.store is None:
                raise RuntimeError("not started")
            depth, counts = await asyncio.wait_for(
                asyncio.gather(service.store.queue_depth(), service.store.status_counts()),
                REDIS_PROBE_S)
        except Exception as exc:
            log.warning("metrics: job store unavailable: %s", exc)
            m.jobs.unreachable()
        else:
            m.jobs.update(depth, counts)
        return Response(m.render(), media_type=CONTENT_TYPE)

    return router


# ------------------------------------------------------------------------------ serving


def graceful_timeout(settings: Settings) -> float:
    """How long a shutdown waits for in-flight requests: the longest a verify may take (its
    Lean timeout), plus a margin. Event streams do not hold it up: they end when it starts."""
    return settings.lean_timeout + 10.0


class DrainingServer(uvicorn.Server):
    """uvicorn, plus two things at shutdown: open event streams are told to end (a client
    reconnects elsewhere with Last-Event-ID) instead of holding the drain for its whole timeout,
    and a SIGTERM/SIGINT that was handled gracefully ends the process with status 0 rather than
    being re-raised after the drain."""

    def __init__(self, config: uvicorn.Config, draining: asyncio.Event) -> None:
        super().__init__(config)
        self.draining = draining

    async def shutdown(self, sockets: Any = None) -> None:
        self.draining.set()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


# How long an idle client connection stays open. uvicorn's default (5 s) equals httpx's pool
# expiry, so after a burst a client would send its next request (a batch) on a connection the
# server is just closing and get a connection reset. Longer than the clients' own expiry (httpx
# 5 s, aiohttp 15 s), the client always gives up an idle connection first.
KEEP_ALIVE_S = 75


def build_server(settings: Settings, app: FastAPI) -> DrainingServer:
    config = uvicorn.Config(
        app, host=settings.server_host, port=settings.server_port, lifespan="on",
        log_config=None, access_log=False, server_header=False, timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=int(graceful_timeout(settings)),
    )
    return DrainingServer(config, app.state.service.draining)


def serve(settings: Settings, addons: Sequence[Addon] = ()) -> None:
    """`prover serve`: run until SIGTERM/SIGINT, then drain in-flight requests and stop.
    A failure to start (bad REPL command, ...) is re-raised as itself, so the CLI prints one
    clear line and exits 2."""
    configure_logging()
    app = create_app(settings, addons=addons)
    try:
        build_server(settings, app).run()
    except SystemExit:
        error = app.state.service.startup_error
        if error is not None:
            raise error from None
        raise
