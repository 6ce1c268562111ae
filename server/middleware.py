"""The two ASGI layers every request crosses before a route sees it.

`RequestContext` (outermost): request id in and out, the access log line, request metrics, and
the last line of defence that turns any exception into a JSON 500 naming the request id.

`Guard` (for `/v1/*`, the Kimina-compatible paths and those of added applications such as
`/mcp`): API key, rate limit, then the body: read here, chunk by chunk, refused with 413 once it
passes the limit, whether or not a Content-Length announced it (chunked uploads announce
nothing), and refused with 422 unless it is UTF-8. Doing this before FastAPI means an
unauthenticated or oversized request costs no parsing, and the route gets a body that is known
to be small and decodable. A refused body is still read (and dropped) up to a cap before the 413
goes out: clients that send the whole body before reading the answer (Python's urllib, requests)
would otherwise see the connection reset under them instead of the 413. Only a client that asked
`Expect: 100-continue` and has sent nothing yet is answered at once.

Both are plain ASGI rather than Starlette's BaseHTTPMiddleware, which would buffer or break the
Server-Sent Events stream and re-wrap exceptions.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import Authenticator
from server.errors import error_response, retry_after
from server.limits import RateLimiter
from server.logs import reset_request_id, set_request_id
from server.metrics import Metrics

access_log = logging.getLogger("server.access")
error_log = logging.getLogger("server.errors")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_QUIET_ROUTES = frozenset({"/healthz", "/metrics"})  # probed every few seconds: debug level
_BATCH_ROUTES = frozenset({"/v1/verify/batch"})  # bodies up to the batch limit
# Checks wait in the fair verify queue (server/admission.py), which refuses only when it is full
# or the wait would pass its limit: a per-minute request count must not refuse a burst of single
# checks (an RL step) that the queue has room for.
_QUEUED_ROUTES = frozenset({"/v1/verify", *_BATCH_ROUTES})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RequestContext:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    def _route(self, scope: Scope) -> str:
        """The route's template (`/v1/jobs/{job_id}`), so metric labels stay few whatever the
        ids; `other` for paths no route serves."""
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", "other"))
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = _header(scope, b"x-request-id")
        given = raw.decode("latin-1") if raw else ""
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)
        route = self._route(scope)
        method = scope["method"]
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error in %s %s", method, scope["path"])
            if not response_started:
                response = error_response(500, "internal_error",
                                          f"internal error (request id {request_id})")
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_flight.dec()
            self.metrics.observe_request(method, route, status, elapsed)
            state: dict[str, Any] = scope.get("state", {})
            access_log.log(
                logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO,
                "%s %s %d", method, scope["path"], status,
                extra={"method": method, "path": scope["path"], "route": route,
                       "status": status, "duration_ms": round(elapsed * 1000, 2),
                       "client": _client(scope), "principal": state.get("principal")},
            )
            reset_request_id(token)


class _TooLarge(Exception):
    def __init__(self, drained: bool) -> None:
        self.drained = drained  # False: the client may still be sending


def _too_large(limit: int, batch_limit: int, batch: bool) -> str:
    """The 413 message: the limit, the setting that raises it, and the way around it."""
    if batch:
        return (f"request body larger than {limit // 1024} KiB (PROVER_API_MAX_BATCH_BODY_MB): "
                "split the batch into smaller requests")
    return (f"request body larger than {limit // 1024} KiB (PROVER_API_MAX_BODY_KB); many proofs "
            f"go in one POST /v1/verify/batch, which takes up to {batch_limit // 1024} KiB")


def _authorization(scope: Scope) -> bytes | None:
    """`Authorization`, or Kimina Lean Server's `X-Auth-Token: [Bearer ]KEY` read as one."""
    authorization = _header(scope, b"authorization")
    if authorization:
        return authorization
    token = _header(scope, b"x-auth-token")
    if token:
        return b"Bearer " + token.strip().removeprefix(b"Bearer ").strip()
    return None


class Guard:
    def __init__(self, app: ASGIApp, *, auth: Authenticator, limiter: RateLimiter,
                 max_body_bytes: int, batch_body_bytes: int | None = None,
                 drain_bytes: int = 0, also_guard: frozenset[str] = frozenset(),
                 app_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.auth = auth
        self.limiter = limiter
        self.max_body = max_body_bytes
        self.batch_body = max(max_body_bytes, batch_body_bytes or 0)
        self.drain = drain_bytes
        self.also_guard = also_guard  # paths outside /v1 with the same rules (Kimina's)
        self.app_paths = app_paths  # added applications' (/mcp): same rules, single-request body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith("/v1/") or path == "/v1"
                                           or path in self.also_guard
                                           or path in self.app_paths):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        if self.auth.enabled:
            authorization = _authorization(scope)
            principal = self.auth.identify(authorization)
            if principal is None:
                challenge = 'Bearer realm="prover"'
                if authorization:
                    challenge += ', error="invalid_token"'
                message = ("missing API key: send `Authorization: Bearer KEY`" if not
                           authorization else "unknown API key")
                await error_response(401, "unauthorized", message,
                                     headers={"WWW-Authenticate": challenge})(scope, receive, send)
                return
        else:
            principal = "addr:" + _client(scope)
        state["principal"] = principal

        queued = path in _QUEUED_ROUTES or (path in self.also_guard and scope["method"] == "POST")
        wait = None if queued else self.limiter.take(principal)
        if wait is not None:
            await error_response(
                429, "rate_limited",
                f"rate limit of {int(self.limiter.capacity)} requests per minute exceeded",
                headers=retry_after(wait))(scope, receive, send)
            return

        if scope["method"] in ("POST", "PUT", "PATCH"):
            batch = path in _BATCH_ROUTES or path in self.also_guard
            limit = self.batch_body if batch else self.max_body
            try:
                body = await self._read_body(scope, receive, limit)
            except _TooLarge as exc:
                headers = {} if exc.drained else {"Connection": "close"}
                await error_response(
                    413, "payload_too_large", _too_large(limit, self.batch_body, batch),
                    headers=headers)(scope, receive, send)
                return
            if body is None:  # the client went away mid-upload: nobody to answer
                return
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await error_response(
                    422, "invalid_request", f"request body is not valid UTF-8 (byte {exc.start})",
                )(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes | None:
        announced = _header(scope, b"content-length")
        length = int(announced) if announced is not None and announced.strip().isdigit() else None
        if length is not None and length > limit:
            waiting = (_header(scope, b"expect") or b"").lower() == b"100-continue"
            if waiting or length > limit + self.drain:
                raise _TooLarge(drained=False)  # refused before a byte of it is read
            await self._drain(receive, 0, limit)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            more = bool(message.get("more_body", False))
            if size > limit:
                chunks.clear()
                if not more:
                    raise _TooLarge(drained=True)
                await self._drain(receive, size, limit)
                return None
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def _drain(self, receive: Receive, size: int, limit: int) -> None:
        """Read and drop the rest of an oversized body, up to the drain cap past the limit,
        then refuse it (or just return if the client left meanwhile: nobody to answer)."""
        while size <= limit + self.drain:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                raise _TooLarge(drained=True)
        raise _TooLarge(drained=False)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body over once, then the real channel (so a
    route can still hear the client disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
