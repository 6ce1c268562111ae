"""LeanDojo's `Dojo` on our REPL pool: code written for LeanDojo runs unchanged, without tracing.

    from prover.dojo import Dojo
    with Dojo(theorem) as (dojo, state):          # theorem: a lean_dojo.Theorem
        result = dojo.run_tac(state, "intro h")   # TacticState | LeanError | ProofFinished | ...

Results are lean_dojo's own classes, so ReProver-style search code needs no change. The theorem
becomes a problem from its file, read from a local checkout of its repository at its commit
(`prover.leandojo`); LeanDojo's tracing (a machine with Lean, and hours for Mathlib) is not
needed. The session runs remotely through the service's `/v1/sessions` (`url=`), or locally on
a Lean pool this object starts. `ProofFinished` comes only after the whole-file check.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
from lean_dojo import (
    DojoCrashError,
    DojoInitError,
    DojoTacticTimeoutError,
    LeanError,
    ProofFinished,
    ProofGivenUp,
    TacticResult,
    TacticState,
)

from prover.config import Settings
from prover.datasets import Problem
from prover.leandojo import DojoTheorem, TheoremNotFound, find_checkout, theorem_problem

T = TypeVar("T")
_SORRY = re.compile(r"(?<![\w'.])(?:sorry|admit)(?![\w'])")


class _Sessions(Protocol):
    def open(self, header: str, statement: str, lean_env: str | None = None
             ) -> dict[str, Any]: ...
    def tactic(self, session_id: str, state: int, tactic: str) -> dict[str, Any]: ...
    def end(self, session_id: str) -> None: ...
    def close(self) -> None: ...


def _raise_for(status: int, message: str, *, opening: bool) -> None:
    if opening:
        raise DojoInitError(message)
    if "PROVER_TACTIC_TIMEOUT" in message:
        raise DojoTacticTimeoutError(message)
    raise DojoCrashError(message)


class RemoteSessions:
    """The service's `/v1/sessions`, over HTTP."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 600.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None, *,
              opening: bool = False) -> dict[str, Any]:
        try:
            r = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            # Opening is LeanDojo's initialisation: whatever stops it is a DojoInitError.
            what = ("did not answer" if isinstance(exc, httpx.TimeoutException)
                    else "cannot be reached")
            message = f"the prover service at {self._client.base_url} {what}: {exc}"
            if opening:
                raise DojoInitError(message) from exc
            if isinstance(exc, httpx.TimeoutException):
                raise DojoTacticTimeoutError(message) from exc
            raise DojoCrashError(message) from exc
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:500]
            _raise_for(r.status_code, f"{r.status_code}: {message}", opening=opening)
        return r.json() if r.content else {}

    def open(self, header: str, statement: str, lean_env: str | None = None
             ) -> dict[str, Any]:
        body: dict[str, Any] = {"header": header, "statement": statement}
        if lean_env is not None:
            body["lean_env"] = lean_env
        return self._call("POST", "/v1/sessions", body, opening=True)

    def tactic(self, session_id: str, state: int, tactic: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/sessions/{session_id}/tactics",
                          {"state": state, "tactic": tactic})

    def end(self, session_id: str) -> None:
        self._call("DELETE", f"/v1/sessions/{session_id}", None)

    def close(self) -> None:
        self._client.close()


class LocalSessions:
    """A Lean pool and its tactic sessions in this process, on a private event loop thread (the
    LeanDojo interface is synchronous)."""

    def __init__(self, settings: Settings) -> None:
        from prover.lean import LeanPool
        from prover.lean.tactic_session import TacticSessions

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="prover-dojo")
        self._thread.start()
        pool = self._run(LeanPool(settings, workers=1).start(eager=False))
        self._pool = pool
        self._sessions = TacticSessions(pool, settings)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _guard(self, coro: Coroutine[Any, Any, T], *, opening: bool = False) -> T:
        from prover.lean import StatementError
        from prover.lean.tactic_session import SessionError

        try:
            return self._run(coro)
        except (SessionError, StatementError) as exc:
            _raise_for(0, str(exc), opening=opening)
            raise  # unreachable: _raise_for always raises

    def open(self, header: str, statement: str, lean_env: str | None = None
             ) -> dict[str, Any]:
        # The pool is already the environment's (Dojo passes its settings): lean_env is spent.
        sid, root = self._guard(self._sessions.open(header=header, statement=statement),
                                opening=True)
        return {"session_id": sid, "state": root.state, "goals": list(root.goals)}

    def tactic(self, session_id: str, state: int, tactic: str) -> dict[str, Any]:
        return self._guard(self._sessions.apply(session_id, state, tactic)).to_json()

    def end(self, session_id: str) -> None:
        self._guard(self._sessions.end(session_id))

    def close(self) -> None:
        try:
            self._run(self._sessions.close())
            self._run(self._pool.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def as_problem(entry: Any, repos: Sequence[Path] = ()) -> Problem:
    """A `lean_dojo.Theorem` (or our `DojoTheorem`, or a `Problem`) as the problem to prove;
    a theorem's repository must be checked out locally at its commit (see prover.leandojo)."""
    if isinstance(entry, Problem):
        return entry
    if isinstance(entry, DojoTheorem):
        theorem = entry
    else:  # lean_dojo.Theorem: repo (url, commit), file_path, full_name
        try:
            theorem = DojoTheorem(str(entry.repo.url), str(entry.repo.commit),
                                  str(entry.file_path), str(entry.full_name))
        except AttributeError as exc:
            raise DojoInitError(f"not a LeanDojo Theorem: {entry!r}") from exc
    checkout = find_checkout(theorem, list(repos))
    if isinstance(checkout, str):
        raise DojoInitError(checkout)
    try:
        return theorem_problem(theorem, checkout)
    except (TheoremNotFound, ValueError) as exc:
        raise DojoInitError(f"{theorem.file_path}: {exc}") from exc


class Dojo:
    """`with Dojo(theorem) as (dojo, initial_state):` then `dojo.run_tac(state, tactic)`.

    `url` (and `api_key`) use a running service; without it a local pool is started from
    `settings` (default: `Settings.load()`, i.e. the PROVER_* variables). `lean_env` names the
    Lean environment (of the service, or of `settings`; default: the default one; unknown:
    DojoInitError listing the known names). `timeout` is
    LeanDojo's: seconds for one tactic locally, for one HTTP exchange remotely. `repos` are
    directories holding checkouts named like their repository.
    """

    def __init__(
        self, entry: Any, timeout: int = 600, *, url: str | None = None,
        api_key: str | None = None, settings: Settings | None = None,
        repos: Sequence[Path | str] = (), lean_env: str | None = None,
    ) -> None:
        self.entry = entry
        self.timeout = timeout
        self.problem = as_problem(entry, [Path(r) for r in repos])
        self.is_successful: bool | None = None
        self._url, self._api_key, self._settings = url, api_key, settings
        self.lean_env = lean_env
        self._backend: _Sessions | None = None
        self._session: str | None = None

    def __enter__(self) -> tuple[Dojo, TacticState]:
        if self._url is not None:
            backend: _Sessions = RemoteSessions(self._url, self._api_key, float(self.timeout))
        else:
            # LeanDojo's `timeout` bounds one tactic; locally it is the sessions' own limit.
            from prover.lean.environments import UnknownEnvironment, environment

            try:
                chosen = environment(self._settings or Settings.load(), self.lean_env)
            except UnknownEnvironment as exc:
                raise DojoInitError(str(exc)) from None
            backend = LocalSessions(chosen.settings.with_overrides(
                tactic_timeout=float(self.timeout)))
        try:
            opened = backend.open(self.problem.header, self.problem.formal_statement,
                                  self.lean_env)
        except BaseException:
            backend.close()
            raise
        self._backend, self._session = backend, str(opened["session_id"])
        self.is_successful = False
        return self, TacticState(_pp(opened["goals"]), int(opened["state"]))

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        backend, session = self._backend, self._session
        self._backend = self._session = None
        if backend is None:
            return
        try:
            # A session that is gone already needs no ending.
            if session is not None:
                with contextlib.suppress(DojoCrashError, DojoTacticTimeoutError):
                    backend.end(session)
        finally:
            backend.close()

    def run_tac(self, state: TacticState, tactic: str) -> TacticResult:
        if not isinstance(state, TacticState):
            raise RuntimeError(f"Attempting to run a tactic on an invalid state {state}.")
        if self._backend is None or self._session is None:
            raise RuntimeError("run_tac outside `with Dojo(...)`")
        if _SORRY.search(tactic):  # LeanDojo's answer to a proof that gives up
            return ProofGivenUp()
        answer = self._backend.tactic(self._session, state.id, tactic)
        if answer.get("proved"):
            self.is_successful = True
            return ProofFinished(int(answer["state"]), None)
        if "error" in answer:
            return LeanError(str(answer["error"]).strip())
        return TacticState(_pp(answer["goals"]), int(answer["state"]))


def _pp(goals: Sequence[str]) -> str:
    """LeanDojo's pretty-printed state: the goals separated by blank lines."""
    return "\n\n".join(goals)
