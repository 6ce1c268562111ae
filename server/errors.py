"""Every error the service answers has one JSON shape, `{"error": {"code", "message", ...}}`.

Clients branch on `code` (stable, snake_case) and show `message` (for people); a stack trace never
leaves the process. Errors are raised as `ApiError`, a Starlette `HTTPException` subclass on
purpose: FastAPI re-raises `HTTPException`s met while reading a request body but turns any other
exception there into a bare 400, so only this base class keeps our status and code intact.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.logs import current_request_id

log = logging.getLogger("server.errors")

# status -> the code used when an error of that status carries no code of its own
DEFAULT_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable reason, e.g. `invalid_request`, "
                      "`not_found`, `rate_limited`, `overloaded`")
    message: str = Field(description="human-readable explanation")
    request_id: str | None = Field(None, description="the request's X-Request-ID, for support")
    details: list[dict[str, Any]] | None = Field(
        None, description="for `invalid_request`: one entry per offending field (`loc`, `msg`)")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ApiError(StarletteHTTPException):
    """An error with a status, a stable code and a message meant for the client."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers or {}))
        self.code = code
        self.message = message
        self.details = details


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header: whole seconds, at least one (0 would invite a busy loop)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def error_response(status: int, code: str, message: str, *,
                   headers: Mapping[str, str] | None = None,
                   details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Where and what, without `input`: echoing a rejected 1 MB proof back helps nobody."""
    out = []
    for e in errors[:20]:
        loc = [p for p in e.get("loc", ()) if p != "body"]
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":  # loc is [character offset]: say so in words
            reason = (e.get("ctx") or {}).get("error", "")
            msg = f"malformed JSON at character {loc[0] if loc else 0}" + (
                f": {reason}" if reason else "")
            loc = []
        out.append({"loc": loc, "msg": msg, "type": e.get("type")})
    return out


def _summary(details: list[dict[str, Any]]) -> str:
    if not details:
        return "invalid request"
    first = details[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{where}: {first['msg']}{more}"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, headers=exc.headers,
                              details=exc.details)
    # Starlette's own (404 for an unknown route, 405) and FastAPI's body-parsing 400.
    code = DEFAULT_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc.errors())
    return error_response(422, "invalid_request", _summary(details), details=details)


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis unreachable: the job API is down, but it is a condition to retry, not a bug."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        log.warning("redis unavailable: %s", exc)
        return error_response(503, "unavailable", "the job store (Redis) is unreachable; "
                              "retry later", headers=retry_after(5))
    log.error("redis error: %s", exc)
    return error_response(500, "internal_error",
                          f"internal error (request id {current_request_id()})")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, _redis_error)


def validation_error(loc: Sequence[str | int], message: str) -> ApiError:
    """A 422 in the same shape as pydantic's, for checks pydantic cannot do (settings-bound)."""
    details = [{"loc": list(loc), "msg": message, "type": "value_error"}]
    return ApiError(422, "invalid_request", _summary(details), details=details)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a route can answer."""
    text = {
        401: "missing or wrong API key (only when PROVER_API_KEYS is set); "
             "`WWW-Authenticate: Bearer`",
        404: "no such job",
        409: "the Idempotency-Key was used before with a different request",
        413: "request body larger than PROVER_API_MAX_BODY_KB",
        422: "malformed JSON, invalid UTF-8, unknown or ill-typed fields, out-of-range values",
        429: "rate limit (PROVER_API_RATE_LIMIT per minute per key) exceeded; see Retry-After",
        500: "internal error; the message carries the request id",
        503: "overloaded (verify slots full) or a dependency (Redis) unreachable; "
             "see Retry-After",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "error")} for s in statuses}
