"""Batch items `{id, code, statement?, timeout?, cache?}`: one reading of them for the HTTP batch
routes and `prover verify --batch`, so a file and a request mean the same thing.

An item that cannot be checked (a missing field, a statement that is not a theorem, a timeout
past the limit) gets an error result of its own; it never fails the batch it came in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from prover.lean import CheckRequest, CheckResult, StatementError
from prover.lean.source import parse_statement


def _encodable(text: str) -> str:
    """JSON may spell lone surrogates (`"\\ud800"`), which are not text: they cannot be written
    to a UTF-8 pipe, so a REPL or Redis would fail on them later with a less clear error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate (not valid Unicode)") from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class BatchItem(BaseModel):
    """One proof of a batch (strict: a misspelt field is an error, not a default)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | int = Field(description="the caller's name for the item, echoed in its result; "
                          "unique within the batch")
    code: Text = Field(min_length=1, description="a complete Lean file, header included")
    statement: Text | None = Field(None, description="the theorem that must be proved")
    timeout: float | None = Field(None, gt=0, description="seconds for this item's check")
    cache: bool = Field(True, description="false: check again even if the verdict is cached")
    context: Text | None = Field(None, description="text the file begins with, in which "
                                 "`statement` is read (as on /v1/verify)")


@dataclass(frozen=True)
class Item:
    index: int
    id: str | int
    request: CheckRequest


@dataclass(frozen=True)
class ItemError:
    index: int
    id: Any
    code: str
    message: str
    details: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = list(self.details)
        return {"id": self.id, "error": error}


def _details(exc: ValidationError) -> tuple[dict[str, Any], ...]:
    return tuple({"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                 for e in exc.errors(include_url=False, include_input=False)[:20])


def parse_item(index: int, raw: Any, max_timeout: float) -> Item | ItemError:
    """The item at `index`, or its error (never an exception)."""
    given_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(given_id, str | int) or isinstance(given_id, bool):
        given_id = None
    try:
        item = BatchItem.model_validate(raw)
    except ValidationError as exc:
        details = _details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"]) or "item"
        return ItemError(index, given_id, "invalid_request", f"{where}: {first['msg']}", details)
    if item.timeout is not None and item.timeout > max_timeout:
        return ItemError(index, item.id, "invalid_request",
                         f"timeout: must be at most {max_timeout:g} seconds (PROVER_LEAN_TIMEOUT)",
                         ({"loc": ["timeout"], "msg": "too large", "type": "value_error"},))
    if item.statement is not None:
        try:
            parse_statement(item.statement)
        except StatementError as exc:
            return ItemError(index, item.id, "invalid_request", f"statement: {exc}",
                             ({"loc": ["statement"], "msg": str(exc), "type": "value_error"},))
    return Item(index, item.id, CheckRequest(code=item.code, statement=item.statement,
                                             timeout=item.timeout, use_cache=item.cache,
                                             context=item.context))


def duplicate_ids(raws: Iterable[Any]) -> list[str | int]:
    """Ids given to more than one item (each named once, in first-repeat order)."""
    seen: set[tuple[type, Any]] = set()
    repeated: dict[tuple[type, Any], str | int] = {}
    for raw in raws:
        value = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        key = (type(value), value)
        if key in seen:
            repeated.setdefault(key, value)
        seen.add(key)
    return list(repeated.values())


def result_json(item_id: Any, result: CheckResult) -> dict[str, Any]:
    """A batch item's result: the verify object (with `cached`) and the item's `id`."""
    return {"id": item_id, **result.to_json()}


async def check_each(items: list[Item], window: int,
                     check: Callable[[Item], Awaitable[dict[str, Any]]],
                     emit: Callable[[int, dict[str, Any]], None]) -> None:
    """`check` every item with at most `window` in flight, `emit(index, result)` as each one
    finishes. A window rather than one task per item: a 10,000-item batch holds `window` places
    in whatever queue `check` waits in, so others' work can come between its items."""
    pending = iter(items)

    async def feed() -> None:
        for item in pending:
            emit(item.index, await check(item))

    await asyncio.gather(*(feed() for _ in range(max(1, min(window, len(items))))))
