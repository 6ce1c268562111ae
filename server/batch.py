"""`POST /v1/verify/batch`: thousands of proofs in one request, as an RL training step sends them.

One request instead of thousands saves the per-request cost on both sides, and the results can
stream back as NDJSON while the rest are still being checked, so the trainer can start scoring
early. Items go through the same admission queue and pool as `/v1/verify`; a batch checks in
one Lean environment, its `lean_env` (an RL step's samples target one Lean).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from prover.verify_items import Item, ItemError, Text, duplicate_ids, parse_item
from server import errors
from server.checks import CheckingService, admit_batch, principal_of, run_items, service_of
from server.disconnect import ClientGone, unless_client_leaves
from server.errors import ApiError, validation_error

NDJSON = "application/x-ndjson"


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{
        "items": [{"id": "p1", "code": "import Mathlib\ntheorem t (a : Nat) : a + 0 = a := by\n"
                   "  simp\n", "statement": "theorem t (a : Nat) : a + 0 = a := by"}]}]})

    items: list[Any] = Field(description="each `{id, code, statement?, timeout?, cache?}`; up "
                             "to PROVER_MAX_BATCH; ids unique")
    lean_env: Text | None = Field(
        None, description="the Lean environment every item is checked in (a name of "
        "PROVER_LEAN_ENVS, or `default`); the default environment when absent. Unknown names "
        "are 422 for the whole batch, listing the known ones")


def parse_batch(service: CheckingService, raws: list[Any], what: str = "items",
                ) -> tuple[list[Item], list[ItemError]]:
    """The checkable items and the malformed ones; 422 for an empty batch or a repeated id, 413
    past PROVER_MAX_BATCH."""
    settings = service.settings
    if not raws:
        raise validation_error([what], "the batch is empty: send at least one item")
    if len(raws) > settings.max_batch:
        raise ApiError(413, "batch_too_large", f"{len(raws)} items in one batch; at most "
                       f"{settings.max_batch} (PROVER_MAX_BATCH): split it")
    repeated = duplicate_ids(raws)
    if repeated:
        shown = ", ".join(repr(r) for r in repeated[:5])
        raise validation_error([what], f"ids must be unique within a batch; repeated: {shown}")
    items: list[Item] = []
    bad: list[ItemError] = []
    for index, raw in enumerate(raws):
        parsed = parse_item(index, raw, settings.lean_timeout)
        (items if isinstance(parsed, Item) else bad).append(parsed)  # type: ignore[arg-type]
    return items, bad


async def check_all(request: Request, service: CheckingService, items: list[Item],
                    emit: Callable[[int, dict[str, Any]], None],
                    lean_env: str | None = None) -> None:
    """Every item checked in `lean_env` (and emitted), or ApiError at once: 422 for an unknown
    environment, 503 when the queue has no room; 499 when the client leaves (what it still had
    queued is dropped)."""
    key = principal_of(request)
    window = admit_batch(service, key, items, lean_env)
    try:
        await unless_client_leaves(request, run_items(service, key, items, window, emit,
                                                      lean_env))
    except ClientGone:
        raise ApiError(499, "client_closed_request", "the client went away") from None


def stream_results(request: Request, service: CheckingService, items: list[Item],
                   bad: list[ItemError], shape: Callable[[int, dict[str, Any]], Any],
                   lean_env: str | None = None) -> StreamingResponse:
    """NDJSON, one line per item as it finishes (`shape(index, result)` each): the malformed
    items first. The environment and room in the queue are checked before the stream starts, so
    a refusal is still a plain 422 or 503."""
    key = principal_of(request)
    window = admit_batch(service, key, items, lean_env)
    lines: asyncio.Queue[tuple[int, dict[str, Any]] | None] = asyncio.Queue()

    async def body() -> AsyncIterator[bytes]:
        for error in bad:
            yield _line(shape(error.index, error.to_json()))
        task = asyncio.ensure_future(run_items(
            service, key, items, window, lambda i, r: lines.put_nowait((i, r)), lean_env))
        task.add_done_callback(lambda _: lines.put_nowait(None))
        try:
            while (entry := await lines.get()) is not None:
                yield _line(shape(*entry))
            task.result()
        finally:  # the client left (Starlette cancels us): drop what is still queued
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return StreamingResponse(body(), media_type=NDJSON)


def wants_stream(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(HTTPBearer(auto_error=False))])

    @api.post(
        "/verify/batch", tags=["verify"], summary="Check many Lean files in one request",
        responses={200: {"description": "`{\"results\": [...]}` in input order: per item the "
                         "verify object plus `id` and `cached`, or `{id, error: {code, message, "
                         "details?}}` for an item that could not be checked. With `Accept: "
                         "application/x-ndjson`: one such object per line, plus its `index`, "
                         "as each item finishes.",
                         "content": {NDJSON: {"schema": {"type": "string"}}}},
                   **errors.responses(401, 413, 422, 429, 503)},
    )
    async def verify_batch(body: BatchRequest, request: Request) -> Any:
        """Check up to PROVER_MAX_BATCH proofs. Items wait in the same fair queue as
        `/v1/verify` (per API key, round-robin), share header imports like any other checks,
        and each gets its own verdict: a malformed item or one past its timeout never fails the
        batch. Empty batch or repeated id: 422; too many items: 413; no room in the queue: 503
        with Retry-After; unknown `lean_env`: 422 listing the known environments."""
        service = service_of(request)
        items, bad = parse_batch(service, body.items)
        if wants_stream(request):
            return stream_results(request, service, items, bad,
                                  lambda index, result: {**result, "index": index},
                                  body.lean_env)
        results: list[dict[str, Any] | None] = [None] * len(body.items)
        for error in bad:
            results[error.index] = error.to_json()

        def emit(index: int, result: dict[str, Any]) -> None:
            results[index] = result

        await check_all(request, service, items, emit, body.lean_env)
        return JSONResponse({"results": results})

    return api
