"""`/v1/sessions`: tactic sessions over HTTP, for tactic-level provers and LeanDojo clients.

Sessions live in this API process, on REPL workers the Lean pool of the session's environment
(`lean_env`) leases for them (proof-state ids mean something only inside one REPL process). A
session is therefore sticky to the API replica that created it: behind a load balancer, route
`/v1/sessions/{id}...` by the id (or keep the client on one replica with session affinity); to
serve more sessions, run more replicas and raise `PROVER_TACTIC_WORKERS` per replica. A replica
that restarts loses its sessions, which then answer 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prover.lean import PoolClosed, StatementError
from prover.lean.tactic_session import (
    SessionGone,
    SessionNotFound,
    SessionSetupError,
    TacticSessions,
    TooManySessions,
    UnknownState,
)
from prover.verify_items import Text
from server import errors
from server.errors import ApiError, retry_after


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionRequest(_Strict):
    """Either `statement` (with an optional `header`) or `file`, a Lean file with one `sorry`."""

    header: Text = Field("", description="imports and `open`s before the statement")
    statement: Text | None = Field(None, description="`theorem NAME ... : TYPE` (a trailing "
                                   "`:= by` is fine); its goal is the root state")
    file: Text | None = Field(None, description="a whole Lean file: its first `sorry` is the "
                              "root state, and a proof replaces it for the final check")
    lean_env: Text | None = Field(None, description="the Lean environment the session runs in "
                                  "(a name of PROVER_LEAN_ENVS, or `default`); the default one "
                                  "when absent. Unknown names are 422, listing the known ones")

    @model_validator(mode="after")
    def _one_source(self) -> SessionRequest:
        if (self.statement is None) == (self.file is None):
            raise ValueError("give exactly one of `statement` and `file`")
        return self

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "header": "import Mathlib\n", "statement": "theorem t (a b : ℕ) : a + b = b + a"}]})


class TacticRequest(_Strict):
    state: int = Field(ge=0, description="a state id of this session (0 is the root)")
    tactic: Text = Field(min_length=1, description="one tactic, e.g. `intro h` (may span lines)")


class SessionCreated(BaseModel):
    session_id: str
    state: int = Field(description="the root state: always 0")
    goals: list[str] = Field(description="its goals, as Lean prints them")


class TacticAnswer(BaseModel):
    """Exactly one of: `state` and `goals` (the tactic worked), `error` (Lean refused it; the
    session goes on), `proved` (no goals left and the whole file passed the pool's check)."""

    state: int | None = None
    goals: list[str] | None = None
    error: str | None = None
    proved: bool | None = None
    proof: str | None = Field(None, description="with `proved`: the whole checked file")


_RESPONSES = {
    **errors.responses(401, 413, 422, 429, 503),
    404: {"model": errors.ErrorResponse, "description": "no such session, or no such state"},
    410: {"model": errors.ErrorResponse, "description": "the session expired (idle past "
          "PROVER_SESSION_IDLE_S) or ended because its Lean worker was restarted"},
}


def _sessions(request: Request, lean_env: str | None = None) -> TacticSessions:
    """The session manager of `lean_env`'s pool (422 for an unknown name, 503 while starting)."""
    return TacticSessions.of(request.app.state.service.lean(lean_env))


def _home(request: Request, session_id: str) -> TacticSessions:
    """The manager that opened `session_id`, whichever environment it is in (ids are random and
    unique across them); the default one, which answers 404, for an id nobody knows."""
    default = _sessions(request)
    for pool in request.app.state.service.environments.pools().values():
        manager = TacticSessions.of(pool)
        if manager.knows(session_id):
            return manager
    return default


def _owner(request: Request) -> str:
    return str(getattr(request.state, "principal", "") or "")


def _translate(exc: Exception) -> ApiError:
    if isinstance(exc, SessionNotFound | UnknownState):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, SessionGone):
        return ApiError(410, "session_expired" if exc.expired else "session_ended", str(exc))
    if isinstance(exc, TooManySessions):
        return ApiError(429, "too_many_sessions", str(exc))
    if isinstance(exc, SessionSetupError | StatementError):
        return errors.validation_error(["body"], str(exc))
    if isinstance(exc, PoolClosed):
        return ApiError(503, "unavailable", "the verifier is shutting down",
                        headers=retry_after(5))
    raise exc


def router() -> APIRouter:
    api = APIRouter(prefix="/v1/sessions", tags=["tactic sessions"],
                    dependencies=[Depends(HTTPBearer(auto_error=False))])

    @api.post("", status_code=201, response_model=SessionCreated, responses=_RESPONSES,
              summary="Open a tactic session")
    async def open_session(body: SessionRequest, request: Request, response: Response) -> Any:
        """Elaborate the statement (or file) with `sorry`, in the Lean environment `lean_env`,
        and return the root state's goals. At most PROVER_SESSIONS_PER_KEY live sessions per key
        in each environment (429 past that); an unknown `lean_env` is 422."""
        try:
            sid, root = await _sessions(request, body.lean_env).open(
                header=body.header, statement=body.statement, file=body.file,
                owner=_owner(request))
        except Exception as exc:
            raise _translate(exc) from None
        response.headers["Location"] = f"/v1/sessions/{sid}"
        return SessionCreated(session_id=sid, state=root.state, goals=list(root.goals))

    @api.post("/{session_id}/tactics", response_model=TacticAnswer,
              response_model_exclude_none=True, responses=_RESPONSES,
              summary="Apply one tactic to one state")
    async def run_tactic(session_id: str, body: TacticRequest, request: Request) -> Any:
        """`{state, goals}` for the new state, `{error}` when Lean refuses the tactic (the session
        and its states stay usable), or `{proved, proof}` once no goal is left and the rebuilt
        whole file passed the full verdict rules."""
        try:
            outcome = await _home(request, session_id).apply(session_id, body.state, body.tactic)
        except Exception as exc:
            raise _translate(exc) from None
        return outcome.to_json()

    @api.delete("/{session_id}", status_code=204, responses=_RESPONSES,
                summary="End a tactic session")
    async def end_session(session_id: str, request: Request) -> Response:
        """Ending a session twice is fine; an id never seen is 404."""
        try:
            await _home(request, session_id).end(session_id)
        except Exception as exc:
            raise _translate(exc) from None
        return Response(status_code=204)

    return api
