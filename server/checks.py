"""One way from a check request to a verdict for every HTTP route that verifies (`/v1/verify`,
`/v1/verify/batch`, the Kimina-compatible routes): through the fair admission queue, onto this
process's Lean pool, counted in the metrics. So a single proof and a batch item wait in the same
line and a limit set once holds for all of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request

from prover.config import Settings
from prover.lean import CheckRequest, CheckResult, LeanPool, PoolClosed, StatementError
from prover.verify_items import Item, ItemError, check_each, result_json
from server.admission import Admission, Refused
from server.errors import ApiError, retry_after
from server.metrics import Metrics


class CheckingService(Protocol):
    settings: Settings
    metrics: Metrics
    admission: Admission

    def lean(self) -> LeanPool: ...


def service_of(request: Request) -> CheckingService:
    service: CheckingService = request.app.state.service
    return service


def principal_of(request: Request) -> str:
    """Whose turn a check takes in the queue: the API key's identity, else the address."""
    return str(getattr(request.state, "principal", "") or "anonymous")


def overloaded(exc: Refused) -> ApiError:
    return ApiError(503, "overloaded", f"{exc}; retry later",
                    headers=retry_after(exc.retry_after_s))


async def check(service: CheckingService, key: str, request: CheckRequest, *,
                patient: bool = False) -> CheckResult:
    """Wait for a slot in `key`'s turn, then check. Raises ApiError 503 when refused, and the
    pool's StatementError / PoolClosed."""
    pool = service.lean()
    metrics = service.metrics
    try:
        started = await service.admission.acquire(key, patient=patient)
    except Refused as exc:
        metrics.verify_saturated.inc()
        raise overloaded(exc) from None
    metrics.verify_in_flight.inc()
    try:
        result = await pool.check(request)
    finally:
        service.admission.release(started)
        metrics.verify_in_flight.dec()
    metrics.verdicts.labels(result.verdict.value).inc()
    return result


def admit_batch(service: CheckingService, key: str, items: list[Item]) -> int:
    """Room for a batch, or ApiError 503: the batch keeps at most `window` (returned) of its
    items waiting or running at once, so the queue's depth and wait limit apply to that many,
    and a batch of any size holds no more of the queue than one burst of single requests."""
    service.lean()  # 503 while the service is starting
    window = max(1, min(len(items), service.admission.slots))
    if items:
        try:
            service.admission.check_room(key, window)
        except Refused as exc:
            service.metrics.verify_saturated.inc()
            raise overloaded(exc) from None
    return window


async def run_items(service: CheckingService, key: str, items: list[Item], window: int,
                    emit: Callable[[int, dict[str, Any]], None]) -> None:
    """Check `items` with `window` of them in flight at once and `emit(index, result JSON)` as
    each finishes. Per-item trouble becomes that item's result; only cancellation escapes."""

    async def one(item: Item) -> dict[str, Any]:
        return await _one(service, key, item)

    await check_each(items, window, one, emit)


async def _one(service: CheckingService, key: str, item: Item) -> dict[str, Any]:
    try:
        result = await check(service, key, item.request, patient=True)
    except StatementError as exc:
        return ItemError(item.index, item.id, "invalid_request", f"statement: {exc}").to_json()
    except PoolClosed:
        return ItemError(item.index, item.id, "unavailable",
                         "the verifier is shutting down; send this item again").to_json()
    except ApiError as exc:  # the service stopped while the item waited
        return ItemError(item.index, item.id, exc.code, exc.message).to_json()
    return result_json(item.id, result)
