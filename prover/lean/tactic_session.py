"""Tactic-by-tactic proving on the REPL: the environment tactic-level provers (ReProver,
InternLM-StepProver, BFS-Prover) and LeanDojo clients need, one tactic applied to one state.

Proof-state ids live in one REPL process, so a session is sticky to one process: sessions run on
a few REPL workers the pool lends out of its check rotation (`LeanPool.lease`), one request at a
time per worker. A session starts from a header and a statement, or from a file whose `sorry`
gives the root state. Tactic mode is not the verdict (it has accepted wrong proofs: REPL issue
44, Pantograph issue 1), so when a tactic leaves no goals the proof is rebuilt as a whole file
and checked by the pool under the full verdict rules; only then is it `proved`.

Limits: a session unused for `PROVER_SESSION_IDLE_S` expires, an owner (API key) holds at most
`PROVER_SESSIONS_PER_KEY`, and a worker that crashes or runs a tactic past
`PROVER_TACTIC_TIMEOUT` is restarted, ending every session it held with that reason.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from prover.config import Settings
from prover.lean import policy, protocol
from prover.lean.checker import CheckRequest, prepare
from prover.lean.pool import LeanPool
from prover.lean.process import ReplFailure, ReplProcess, ReplTimeout
from prover.lean.session import EnvFailure, ReplSession
from prover.lean.source import split_source
from prover.lean.verdict import CheckResult, Verdict
from prover.problem_input import normalise_statement

log = logging.getLogger(__name__)

RETIRED_MEMORY = 4096  # ended session ids remembered, so a late request hears why
Rebuild = Callable[[list[str]], CheckRequest]  # a tactic path -> the whole file to check
_MANAGER_ATTR = "_tactic_sessions"  # where a pool keeps its manager (TacticSessions.of)
T = TypeVar("T")


class SessionError(Exception):
    """A request about a session that cannot be served; subclasses say why."""


class SessionNotFound(SessionError):
    pass


class UnknownState(SessionError):
    pass


class SessionGone(SessionError):
    """The session existed but is over: it expired, or its worker was restarted."""

    def __init__(self, message: str, *, expired: bool) -> None:
        super().__init__(message)
        self.expired = expired


class TooManySessions(SessionError):
    pass


class SessionSetupError(SessionError):
    """The statement or file does not give a root state (it does not elaborate, no `sorry`)."""


@dataclass(frozen=True)
class StateView:
    state: int
    goals: tuple[str, ...]


@dataclass(frozen=True)
class TacticOutcome:
    """What one tactic did: a new state, a Lean error (the session goes on), or a proof that
    passed the whole-file check."""

    kind: Literal["state", "error", "proved"]
    state: int | None = None
    goals: tuple[str, ...] = ()
    error: str | None = None
    proof: str | None = None  # the whole checked file, when proved
    check: CheckResult | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "state":
            return {"state": self.state, "goals": list(self.goals)}
        if self.kind == "error":
            return {"error": self.error}
        return {"proved": True, "state": self.state, "proof": self.proof}


@dataclass
class _Node:
    repl_id: int
    goals: tuple[str, ...]
    parent: int | None
    tactic: str | None


class _Host:
    """One leased REPL process and the sessions that live in it."""

    def __init__(self, repl: ReplSession) -> None:
        self.repl = repl
        self.lock = asyncio.Lock()
        self.sessions: set[str] = set()


@dataclass
class _Session:
    id: str
    owner: str
    host: _Host
    proc: ReplProcess
    nodes: list[_Node]
    rebuild: Rebuild
    last_used: float


def _indent_block(tactics: list[str], column: int) -> str:
    pad = " " * column
    return ("\n" + pad).join(t.strip("\n").replace("\n", "\n" + pad) for t in tactics)


def statement_source(header: str, statement: str) -> tuple[str, Rebuild]:
    """The file that opens a header+statement session, and how a tactic path becomes the file
    the pool checks (with the statement, so it cannot have been changed)."""
    formal = normalise_statement(statement)
    head = header if not header or header.endswith("\n") else header + "\n"

    def rebuild(tactics: list[str]) -> CheckRequest:
        return CheckRequest(code=head + formal + "  " + _indent_block(tactics, 2),
                            statement=formal, context=head or None)

    return head + formal + "  sorry", rebuild


def file_rebuilder(text: str, line: int, column: int, end_column: int) -> Rebuild:
    """How a tactic path replaces the `sorry` at (line, column) of a file (1-based lines)."""
    starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
    start = starts[line - 1] + column
    end = starts[line - 1] + end_column
    before = text[starts[line - 1]:start]
    after_on_line = text[end:].split("\n", 1)[0]
    own_indent = len(before) - len(before.lstrip())

    def rebuild(tactics: list[str]) -> CheckRequest:
        if not before.strip():  # `sorry` is a tactic on its own line
            block = _indent_block(tactics, column)
        elif before.rstrip().endswith("by"):  # `... := by sorry`
            block = "\n" + " " * (own_indent + 2) + _indent_block(tactics, own_indent + 2)
        else:  # a term: `:= sorry`, or inside a bigger term
            block = "by\n" + " " * (own_indent + 4) + _indent_block(tactics, own_indent + 4)
            if after_on_line.strip():
                block = "(" + block + ")"
        return CheckRequest(code=text[:start] + block + text[end:])

    return rebuild


class TacticSessions:
    """Every tactic session on one pool: the API's, a Dojo's, the best-first searches'."""

    @classmethod
    def of(cls, pool: LeanPool) -> TacticSessions:
        """The pool's one manager, so every user shares its leased workers instead of each
        leasing REPL processes of its own."""
        found = getattr(pool, _MANAGER_ATTR, None)
        if not isinstance(found, cls):
            found = cls(pool)
            setattr(pool, _MANAGER_ATTR, found)
        return found

    def __init__(
        self, pool: LeanPool, settings: Settings | None = None,
        *, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.settings = settings or pool.settings
        self._clock = clock
        self._hosts: list[_Host] = []
        self._live: dict[str, _Session] = {}
        self._retired: OrderedDict[str, SessionGone] = OrderedDict()
        self._opening: dict[str, int] = {}
        self._names = itertools.count()
        self._abandoned: set[asyncio.Task[Any]] = set()  # REPL work whose caller was cancelled

    # ------------------------------------------------------------------ sessions

    async def open(
        self, *, header: str = "", statement: str | None = None, file: str | None = None,
        owner: str = "",
    ) -> tuple[str, StateView]:
        """Start a session; returns its id and the root state (id 0) with its goals."""
        if (statement is None) == (file is None):
            raise ValueError("give either a statement (with its header) or a file with `sorry`")
        self._sweep()
        cap = self.settings.sessions_per_key
        held = sum(1 for s in self._live.values() if s.owner == owner)
        if held + self._opening.get(owner, 0) >= cap:
            raise TooManySessions(
                f"this key already holds {held} tactic sessions (PROVER_SESSIONS_PER_KEY={cap}); "
                "DELETE finished ones or let idle ones expire"
            )
        self._opening[owner] = self._opening.get(owner, 0) + 1
        try:
            if statement is not None:
                code, rebuild = statement_source(header, statement)
            else:
                assert file is not None
                code, rebuild = file, None
            # The file goes through the same policy scan as a check, before Lean runs it.
            screened = prepare(CheckRequest(code=code), self.settings)
            if isinstance(screened, CheckResult):
                raise SessionSetupError(f"refused before Lean: {screened.rejection}")
            host = self._host()

            async def start() -> tuple[int, tuple[str, ...], ReplProcess, tuple[int, int, int]]:
                await self._recycle_if_idle(host)
                return await self._root(host, code)

            repl_id, goals, proc, where = await self._on_host(host, start)
            if rebuild is None:
                rebuild = file_rebuilder(code, *where)
            session = _Session(
                id=secrets.token_urlsafe(12), owner=owner, host=host, proc=proc,
                nodes=[_Node(repl_id, goals, None, None)], rebuild=rebuild,
                last_used=self._clock(),
            )
            self._live[session.id] = session
            host.sessions.add(session.id)
            return session.id, StateView(0, goals)
        finally:
            self._opening[owner] -= 1

    async def _root(
        self, host: _Host, code: str
    ) -> tuple[int, tuple[str, ...], ReplProcess, tuple[int, int, int]]:
        repl = host.repl
        split = split_source(code)
        timeout = self.settings.lean_header_timeout
        try:
            env = await repl.header_env(split)
            if isinstance(env, EnvFailure):
                first = next((m.data for m in env.messages if m.is_error), "error")
                raise SessionSetupError(f"the header does not elaborate: {first}")
            resp = await repl.command(split.body, env, timeout)
        except RuntimeError as exc:  # the REPL refused the command (`{"message": ...}`)
            raise SessionSetupError(str(exc)) from exc
        except ReplFailure as exc:
            await repl.discard()
            self._end_host(host, f"the Lean worker failed while opening the session ({exc})")
            raise SessionSetupError(f"the Lean worker failed: {exc}") from exc
        proc = repl.proc
        assert proc is not None
        if resp.errors:
            raise SessionSetupError(f"the statement does not elaborate: {resp.errors[0].data}")
        sorry = next((s for s in resp.sorries if s.proof_state is not None), None)
        if sorry is None or sorry.proof_state is None:
            raise SessionSetupError("no `sorry` with a goal: write `sorry` where the proof goes")
        line = (sorry.pos.line if sorry.pos else 1) + split.body_line_offset
        column = sorry.pos.column if sorry.pos else 0
        end_column = sorry.end_pos.column if sorry.end_pos else column + len("sorry")
        goals = tuple(g for g in sorry.goal.split("\n\n") if g.strip()) or (sorry.goal,)
        return sorry.proof_state, goals, proc, (line, column, end_column)

    def state(self, session_id: str, state: int) -> StateView:
        node = self._node(self._session(session_id), state)
        return StateView(state, node.goals)

    def path(self, session_id: str, state: int) -> list[str]:
        """The tactics from the root to `state`."""
        session = self._session(session_id)
        out: list[str] = []
        node: _Node | None = self._node(session, state)
        while node is not None and node.tactic is not None:
            out.append(node.tactic)
            node = session.nodes[node.parent] if node.parent is not None else None
        return out[::-1]

    async def apply(
        self, session_id: str, state: int, tactic: str, timeout: float | None = None
    ) -> TacticOutcome:
        """Run one tactic on one state of a session (within `timeout`, PROVER_TACTIC_TIMEOUT
        when None)."""
        limit = timeout if timeout is not None else self.settings.tactic_timeout
        session = self._session(session_id)
        node = self._node(session, state)
        violation = policy.scan(tactic, allow_native_decide=self.settings.allow_native_decide)
        if violation is not None:  # as a check would, before any Lean time is spent
            return TacticOutcome("error", error=f"refused before Lean: {violation.describe()}")
        host = session.host

        async def run() -> protocol.Response:
            self._check_alive(session)
            repl = host.repl
            try:
                answer = await repl.request(protocol.tactic(tactic, node.repl_id), limit)
            except ReplFailure as exc:
                await repl.discard()
                reason = (
                    f"a tactic ran past {limit:g} s "
                    "(PROVER_TACTIC_TIMEOUT) and its Lean worker was restarted"
                    if isinstance(exc, ReplTimeout)
                    else f"its Lean worker stopped ({exc})"
                )
                self._end_host(host, reason)
                raise self._retired[session_id] from exc
            repl.checks += 1
            return answer

        answer = await self._on_host(host, run)
        session.last_used = self._clock()
        if isinstance(answer, protocol.ReplError):
            return TacticOutcome("error", error=answer.message)
        if not isinstance(answer, protocol.TacticResponse):
            return TacticOutcome("error", error=f"unexpected REPL answer {answer!r}")
        errors = [m.data for m in answer.messages if m.is_error]
        if errors:
            return TacticOutcome("error", error="\n".join(errors))
        session.nodes.append(_Node(answer.proof_state, answer.goals, state, tactic))
        new_id = len(session.nodes) - 1
        if answer.goals:
            return TacticOutcome("state", state=new_id, goals=answer.goals)
        status = answer.proof_status
        if answer.sorries or (status is not None and status != "Completed"):
            return TacticOutcome(
                "error", error=f"no goals are left, but the proof is not complete: "
                f"{status or 'it contains sorry'}"
            )
        return await self._whole_file(session, new_id)

    async def _whole_file(self, session: _Session, state: int) -> TacticOutcome:
        request = session.rebuild(self.path(session.id, state))
        result = await self.pool.check(request)
        if result.verdict is Verdict.PROVED:
            return TacticOutcome("proved", state=state, proof=request.code, check=result)
        # `incomplete` has no error, only the warning naming the declaration that still uses
        # `sorry` (another `sorry` of a file session), with its line.
        detail = (result.rejection or result.error
                  or next((m.data for m in result.messages if m.is_error), None)
                  or next((f"{m.data} (line {m.pos.line})" if m.pos else m.data
                           for m in result.messages), None)
                  or "no detail")
        return TacticOutcome(
            "error", state=state, check=result,
            error=f"tactic mode closed every goal, but the whole-file check of the proof says "
            f"{result.verdict.value}: {detail}",
        )

    def knows(self, session_id: str) -> bool:
        """Whether `session_id` was opened here (live or over): a service with several Lean
        environments asks each environment's manager to find a session's home."""
        return session_id in self._live or session_id in self._retired

    async def end(self, session_id: str) -> None:
        """End a session (DELETE). Ending one that is already over is fine; an id never seen
        raises SessionNotFound."""
        session = self._live.pop(session_id, None)
        if session is None:
            if session_id in self._retired:
                return
            raise SessionNotFound(f"no tactic session {session_id!r}")
        self._retire(session, SessionGone(f"session {session_id} was closed", expired=False))

    async def close(self) -> None:
        """End every session; the leased workers are closed with the pool."""
        for session in list(self._live.values()):
            self._retire(session, SessionGone("the service stopped", expired=False))

    def stats(self) -> dict[str, Any]:
        return {"sessions": len(self._live), "workers": len(self._hosts)}

    # ------------------------------------------------------------------ internals

    async def _on_host(self, host: _Host, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` under the host's lock in a task of its own, which a cancelled caller (a
        cancelled search, a closed MCP call) leaves to finish, bounded by its timeout: a REPL
        request abandoned halfway kills the process (its answer would arrive out of step), and
        that would end every session on the worker, not only the caller's."""

        async def locked() -> T:
            async with host.lock:
                return await work()

        task = asyncio.ensure_future(locked())
        self._abandoned.add(task)
        task.add_done_callback(_settled(self._abandoned))
        return await asyncio.shield(task)


    def _host(self) -> _Host:
        """The leased worker with the fewest sessions, leasing another up to the limit."""
        if len(self._hosts) < self.settings.tactic_workers and all(
            h.sessions for h in self._hosts
        ):
            name = f"lean-tactics-{next(self._names)}"
            self._hosts.append(_Host(self.pool.lease(name)))
        return min(self._hosts, key=lambda h: len(h.sessions))

    def _session(self, session_id: str) -> _Session:
        self._sweep()
        session = self._live.get(session_id)
        if session is not None:
            self._check_alive(session)
            session.last_used = self._clock()
            return session
        gone = self._retired.get(session_id)
        if gone is not None:
            raise gone
        raise SessionNotFound(f"no tactic session {session_id!r}")

    @staticmethod
    def _node(session: _Session, state: int) -> _Node:
        if not 0 <= state < len(session.nodes):
            raise UnknownState(f"session {session.id} has no state {state}")
        return session.nodes[state]

    def _check_alive(self, session: _Session) -> None:
        if session.host.repl.proc is not session.proc:
            self._end_host(session.host, "its Lean worker was restarted")
        elif not session.proc.alive:  # died between requests; a new REPL knows none of its ids
            self._end_host(session.host, "its Lean worker stopped")
        gone = self._retired.get(session.id)
        if gone is not None and session.id not in self._live:
            raise gone

    def _sweep(self) -> None:
        now, idle = self._clock(), self.settings.session_idle_s
        for session in list(self._live.values()):
            if now - session.last_used > idle:
                self._retire(session, SessionGone(
                    f"session {session.id} expired after {idle:g} s without a request "
                    "(PROVER_SESSION_IDLE_S); open a new one", expired=True))

    def _end_host(self, host: _Host, reason: str) -> None:
        for sid in list(host.sessions):
            session = self._live.get(sid)
            if session is not None and (session.proc is not host.repl.proc
                                        or not session.proc.alive):
                self._retire(session, SessionGone(
                    f"session {sid} ended: {reason}; its proof states are gone, open a new "
                    "session", expired=False))

    def _retire(self, session: _Session, why: SessionGone) -> None:
        self._live.pop(session.id, None)
        session.host.sessions.discard(session.id)
        self._retired[session.id] = why
        while len(self._retired) > RETIRED_MEMORY:
            self._retired.popitem(last=False)

    async def _recycle_if_idle(self, host: _Host) -> None:
        """Proof states are never freed in a REPL: restart a leased worker grown past its
        limits, but only when no session lives in it."""
        reason = host.repl.wants_recycling()
        if not host.sessions and reason is not None:
            await host.repl.recycle(reason)


def _settled(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """Forget a finished task, reading its outcome: nobody awaits one whose caller was cancelled,
    and its failure (already turned into ended sessions) is no unhandled error."""

    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done
