"""Kimina Lean Server's API on our verifier: `POST /api/check`, `POST /verify`, `GET /health`.

Most RL pipelines talk to Lean through `kimina-client`; speaking its JSON lets them switch
servers by changing a URL. The shape is theirs, the judgement ours: whatever we refuse to call
proved (a non-standard axiom, a theorem other than the statement asked for, a policy rejection,
`sorry` hidden behind an axiom) comes out in their shape as an error or a sorry, so that
Kimina's own validity helpers (`ReplResponse.analyze`, `proof_utils.parse_client_response`) read
it as not valid and a reward built on them cannot be fooled. docs/api.md lists every difference.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from server import errors
from server.batch import check_all, parse_batch
from server.checks import CheckingService, service_of

PATHS = frozenset({"/api/check", "/api/check/", "/verify", "/one_pass_verify_batch",
                   "/health", "/health/"})
_SORRY_WARNING = "declaration uses 'sorry'"  # the text Kimina's helpers look for


class CheckBody(BaseModel):
    """kimina-client's `CheckRequest` (lenient, as Kimina's own models are)."""

    snippets: list[Any] = Field(description="each `{id, code}` (and, our extension, "
                                "`statement`: the theorem that must be proved)")
    timeout: float = Field(30, ge=0, description="seconds per snippet (capped at "
                           "PROVER_LEAN_TIMEOUT; 0 means that limit)")
    debug: bool = False
    reuse: bool = True
    infotree: str | None = None


class VerifyBody(BaseModel):
    """Kimina's older `VerifyRequestBody` (`/verify`, `/one_pass_verify_batch`)."""

    codes: list[Any] = Field(description="each `{custom_id, proof | code}` (and `statement`)")
    timeout: float = Field(300, ge=0)
    infotree_type: str | None = None
    disable_cache: bool = False


def _timeout(asked: float, service: CheckingService) -> float:
    """Their timeout, capped at ours; 0 (no limit in their terms) is our limit."""
    limit = service.settings.lean_timeout
    return float(min(asked, limit)) if asked > 0 else limit


def _item(raw: Any, id_key: str, code: Any, timeout: float, cache: bool) -> Any:
    """Our batch item for one of their snippets; anything malformed is left for parse_item
    to name."""
    if not isinstance(raw, dict):
        return raw
    item: dict[str, Any] = {"id": raw.get(id_key), "code": code, "cache": cache,
                            "timeout": timeout}
    if raw.get("statement") is not None:
        item["statement"] = raw["statement"]
    return item


def _pos(line: int | None, column: int | None) -> dict[str, int]:
    return {"line": line or 0, "column": column or 0}


def _message(m: dict[str, Any]) -> dict[str, Any]:
    severity = m["severity"] if m["severity"] in ("trace", "info", "warning", "error") else "info"
    end = _pos(m["end_line"], m["end_column"]) if m.get("end_line") is not None else None
    return {"severity": severity, "pos": _pos(m["line"], m["column"]), "endPos": end,
            "data": m["text"]}


def _sorry(s: dict[str, Any]) -> dict[str, Any]:
    return {"pos": _pos(s["line"], s["column"]),
            "endPos": _pos(s["end_line"] or s["line"], s["end_column"] or s["column"]),
            "goal": s.get("goal") or ""}


def _note(severity: str, text: str) -> dict[str, Any]:
    return {"severity": severity, "pos": _pos(1, 0), "endPos": None, "data": text}


def command_response(v: dict[str, Any]) -> dict[str, Any]:
    """A verify object as the REPL's answer that Kimina passes on, made to read as what we
    judged: only `proved` has neither an error message nor a sorry."""
    messages = [_message(m) for m in v["messages"]]
    sorries = [_sorry(s) for s in v["sorries"]]
    verdict = v["verdict"]
    if verdict == "incomplete":
        if not sorries:  # sorry reached through an axiom or a lemma: no position of its own
            sorries.append({"pos": _pos(1, 0), "endPos": _pos(1, 0), "goal": ""})
        if not any(m["severity"] == "warning" and _SORRY_WARNING in m["data"] for m in messages):
            messages.append(_note("warning", f"{_SORRY_WARNING} (prover: incomplete)"))
    elif verdict == "rejected":
        messages.append(_note("error", f"prover: rejected: {v['rejection'] or v['error']}"))
    elif verdict != "proved" and not any(m["severity"] == "error" for m in messages):
        messages.append(_note("error", f"prover: {verdict}: {v['error'] or 'not proved'}"))
    out: dict[str, Any] = {"messages": messages}
    if sorries:
        out["sorries"] = sorries
    return out


def _outcome(result: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """(response, error) for one of our results: timeouts and failures of the verifier itself
    are Kimina's `error` strings (its helpers look for "timed out"), everything else a response.
    """
    verdict = result.get("verdict")
    if verdict is None:
        return None, f"{result['error']['code']}: {result['error']['message']}"
    if verdict == "timeout":
        return None, f"Lean REPL command timed out in {timeout:g} seconds ({result['error']})"
    if verdict == "system_error":
        return None, f"verifier error: {result['error']}"
    return command_response(result), None


def _given_id(raw: Any) -> str:
    given = raw.get("id") if isinstance(raw, dict) else None
    return "" if given is None else str(given)


def _time(result: dict[str, Any]) -> float:
    return float(result.get("time_s") or 0.0)


async def _check(request: Request, raws: list[Any], what: str) -> list[dict[str, Any]]:
    service = service_of(request)
    items, bad = parse_batch(service, raws, what)
    results: list[dict[str, Any]] = [{} for _ in raws]
    for error in bad:
        results[error.index] = error.to_json()

    def emit(index: int, result: dict[str, Any]) -> None:
        results[index] = result

    await check_all(request, service, items, emit)
    return results


def router() -> APIRouter:
    api = APIRouter(tags=["kimina-compatible"])

    @api.post("/api/check", summary="Kimina Lean Server's check (kimina-client)",
              responses=errors.responses(401, 413, 422, 429, 503))
    @api.post("/api/check/", include_in_schema=False)
    async def check(body: CheckBody, request: Request) -> Any:
        """`{"snippets": [{id, code}], "timeout"}` -> `{"results": [{id, time, response |
        error}]}` as Kimina answers, judged by this server (see docs/api.md)."""
        timeout = _timeout(body.timeout, service_of(request))
        raws = [_item(s, "id", s.get("code") if isinstance(s, dict) else None, timeout, True)
                for s in body.snippets]
        out = []
        for raw, result in zip(raws, await _check(request, raws, "snippets"), strict=True):
            response, error = _outcome(result, timeout)
            entry: dict[str, Any] = {"id": _given_id(raw), "time": _time(result)}
            entry.update({"response": response} if response is not None else {"error": error})
            out.append(entry)
        return {"results": out}

    @api.post("/verify", summary="Kimina Lean Server's older batch API",
              responses=errors.responses(401, 413, 422, 429, 503))
    @api.post("/one_pass_verify_batch", include_in_schema=False)
    async def verify(body: VerifyBody, request: Request) -> Any:
        """`{"codes": [{custom_id, proof | code}], "timeout", "disable_cache"}` ->
        `{"results": [{custom_id, error?, response?}]}` as Kimina answers."""
        timeout = _timeout(body.timeout, service_of(request))

        def code_of(c: Any) -> Any:
            if not isinstance(c, dict):
                return None
            return c.get("proof") if c.get("proof") is not None else c.get("code")

        raws = [_item(c, "custom_id", code_of(c), timeout, not body.disable_cache)
                for c in body.codes]
        out = []
        for raw, result in zip(raws, await _check(request, raws, "codes"), strict=True):
            response, error = _outcome(result, timeout)
            entry: dict[str, Any] = {"custom_id": _given_id(raw)}
            if error is not None:
                entry["error"] = error
            else:
                entry["response"] = {**(response or {}), "time": _time(result)}
            out.append(entry)
        return {"results": out}

    @api.get("/health", summary="Kimina Lean Server's health check",
             responses=errors.responses(401, 429, 503))
    @api.get("/health/", include_in_schema=False)
    async def health(request: Request) -> Any:
        """`{"status": "ok"}` once the Lean pool is up (503 before); our own is `/healthz`."""
        service_of(request).lean()  # 503 while starting
        return {"status": "ok"}

    return api
