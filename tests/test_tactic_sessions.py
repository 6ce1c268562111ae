"""Tactic sessions, in the pool (prover/lean/tactic_session.py) and over HTTP (/v1/sessions).

Lean is the fake REPL's scripted stairs world: the goal `stairs N` needs N `step` tactics, `skip`
changes nothing, `fake_unsolved` closes the goal in tactic mode only (the whole-file check finds
the goals unsolved, as tactic mode has accepted wrong proofs), and any other tactic does not
parse.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from prover.lean import LeanPool
from prover.lean.tactic_session import (
    SessionGone,
    SessionNotFound,
    SessionSetupError,
    TacticSessions,
    TooManySessions,
    UnknownState,
)
from server.app import create_app
from tests.conftest import fake_cmd, fake_settings
from tests.server_support import asgi_client, error_of, settings

HEADER = "import Mathlib\n"
STAIRS = "theorem climb (n : Nat) : stairs 3"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_proof_of_several_steps_is_proved_only_after_the_whole_file_check() -> None:
    s = fake_settings(None, lean_sandbox="none", lean_workers=1)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, root = await sessions.open(header=HEADER, statement=STAIRS)
        assert root.state == 0 and root.goals == ("⊢ stairs 3",)
        wrong = await sessions.apply(sid, 0, "simp at *")
        assert wrong.kind == "error" and "unknown tactic" in (wrong.error or "")
        one = await sessions.apply(sid, 0, "step")  # the session went on after the error
        assert one.kind == "state" and one.goals == ("⊢ stairs 2",)
        two = await sessions.apply(sid, one.state or 0, "step")
        checks_before = pool.completed
        done = await sessions.apply(sid, two.state or 0, "step")
        assert done.kind == "proved"
        assert pool.completed == checks_before + 1  # the whole file went through the pool
        assert done.check is not None and done.check.verdict.value == "proved"
        assert done.proof == f"{HEADER}{STAIRS} := by\n  step\n  step\n  step"
        assert sessions.path(sid, done.state or 0) == ["step", "step", "step"]


async def test_tactic_mode_closing_the_goal_is_not_proved_when_the_file_check_refuses() -> None:
    s = fake_settings(None, lean_sandbox="none", lean_workers=1)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, _ = await sessions.open(header=HEADER, statement=STAIRS)
        checks = pool.completed
        wrong = await sessions.apply(sid, 0, "fake_unsolved")
        assert wrong.kind == "error" and pool.completed == checks + 1
        assert "whole-file check" in (wrong.error or "") and "failed" in (wrong.error or "")
        cheat = await sessions.apply(sid, 0, "native_decide")  # refused before Lean runs it
        assert cheat.kind == "error" and "native_decide" in (cheat.error or "")
        assert pool.completed == checks + 1
        assert (await sessions.apply(sid, 0, "step")).kind == "state"  # still usable
        with pytest.raises(SessionSetupError, match="#eval"):
            await sessions.open(file=f"{HEADER}#eval 1\n{STAIRS} := by\n  sorry\n")


async def test_a_file_with_sorry_opens_a_session_and_the_proof_replaces_the_sorry() -> None:
    s = fake_settings(None, lean_sandbox="none", lean_workers=1)
    text = f"{HEADER}\ntheorem helper : True := by\n  trivial\n\n{STAIRS} := by\n  sorry\n"
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, root = await sessions.open(file=text)
        assert root.goals == ("⊢ stairs 3",)
        state = 0
        for _ in range(3):
            out = await sessions.apply(sid, state, "step")
            state = out.state or 0
        assert out.kind == "proved"
        assert out.proof == text.replace("  sorry\n", "  step\n  step\n  step\n")
        with pytest.raises(SessionSetupError, match="sorry"):
            await sessions.open(file=f"{HEADER}theorem t : True := by\n  trivial\n")


async def test_a_file_with_several_sorries_proves_the_first_and_the_check_says_incomplete(
        ) -> None:
    """The session's root is the file's first `sorry`; closing it leaves the second in the
    rebuilt file, so the whole-file check answers `incomplete`, naming where `sorry` is left."""
    s = fake_settings(None, lean_sandbox="none", lean_workers=1)
    text = (f"{HEADER}\ntheorem one (n : Nat) : stairs 1 := by\n  sorry\n\n"
            "theorem two (n : Nat) : stairs 2 := by\n  sorry\n")
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, root = await sessions.open(file=text)
        assert root.goals == ("⊢ stairs 1",)
        out = await sessions.apply(sid, 0, "step")
        assert out.kind == "error" and out.check is not None
        assert out.check.verdict.value == "incomplete"
        assert "says incomplete: declaration uses 'sorry' (line 6)" in (out.error or "")
        assert (await sessions.apply(sid, 0, "skip")).kind == "state"  # the session goes on


async def test_unknown_ids_expiry_caps_and_crashes_end_sessions_clearly() -> None:
    clock = Clock()
    s = fake_settings(None, lean_sandbox="none", lean_workers=1, sessions_per_key=2,
                      session_idle_s=10)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool, clock=clock)
        with pytest.raises(SessionNotFound):
            await sessions.apply("nope", 0, "step")
        a, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        with pytest.raises(UnknownState):
            await sessions.apply(a, 7, "step")
        await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        with pytest.raises(TooManySessions, match="PROVER_SESSIONS_PER_KEY"):
            await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        await sessions.open(header=HEADER, statement=STAIRS, owner="k2")  # another key's cap
        clock.now = 11
        with pytest.raises(SessionGone, match="expired") as gone:
            await sessions.apply(a, 0, "step")
        assert gone.value.expired
        # A crash ends every session on that worker with a reason, not a hang or a guess.
        b, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        c, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        with pytest.raises(SessionGone, match="Lean worker stopped") as crashed:
            await sessions.apply(b, 0, "step -- fake:crash")
        assert not crashed.value.expired
        with pytest.raises(SessionGone, match="open a new session"):
            await sessions.apply(c, 0, "step")
        d, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="k1")
        assert (await sessions.apply(d, 0, "step")).kind == "state"  # a fresh REPL serves


async def test_a_tactic_past_its_timeout_ends_the_session_and_says_so() -> None:
    s = fake_settings(fake_cmd(), lean_sandbox="none", lean_workers=1, tactic_timeout=1)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, _ = await sessions.open(header=HEADER, statement=STAIRS)
        with pytest.raises(SessionGone, match="PROVER_TACTIC_TIMEOUT"):
            await sessions.apply(sid, 0, "step -- fake:hang")


async def test_sessions_over_http() -> None:
    app = create_app(settings(lean_workers=1))
    async with asgi_client(app) as client:
        r = await client.post("/v1/sessions", json={"header": HEADER, "statement": STAIRS})
        assert r.status_code == 201, r.text
        created = r.json()
        sid = created["session_id"]
        assert created["state"] == 0 and created["goals"] == ["⊢ stairs 3"]
        url = f"/v1/sessions/{sid}/tactics"
        bad = await client.post(url, json={"state": 0, "tactic": "ring_nf at h ⊢"})
        assert bad.status_code == 200 and "unknown tactic" in bad.json()["error"]
        state = 0
        for expected in (["⊢ stairs 2"], ["⊢ stairs 1"]):
            r = await client.post(url, json={"state": state, "tactic": "step"})
            assert r.json()["goals"] == expected
            state = r.json()["state"]
        r = await client.post(url, json={"state": state, "tactic": "step"})
        assert r.json()["proved"] is True and r.json()["proof"].endswith("step\n  step\n  step")
        r = await client.post(url, json={"state": 99, "tactic": "step"})
        assert r.status_code == 404 and "no state 99" in error_of(r)["message"]
        r = await client.post("/v1/sessions/unknown/tactics", json={"state": 0, "tactic": "x"})
        assert r.status_code == 404 and error_of(r)["code"] == "not_found"
        r = await client.post("/v1/sessions", json={"statement": "def x := 1"})
        assert r.status_code == 422
        r = await client.post("/v1/sessions", json={"statement": STAIRS, "file": "x"})
        assert r.status_code == 422
        assert (await client.delete(f"/v1/sessions/{sid}")).status_code == 204
        r = await client.post(url, json={"state": 0, "tactic": "step"})
        assert r.status_code == 410 and error_of(r)["code"] == "session_ended"
        assert (await client.delete("/v1/sessions/never")).status_code == 404


async def test_sessions_over_http_per_key_with_the_whole_file_check_and_parse_errors() -> None:
    """What a step-prover client of the service sees: keys, each key's cap, a proof closed in
    tactic mode but refused by the file check answered as an error, and the session going on."""
    app = create_app(settings(lean_workers=1, api_keys="k1,k2", sessions_per_key=1))
    k1, k2 = ({"Authorization": f"Bearer {k}"} for k in ("k1", "k2"))
    body = {"header": HEADER, "statement": STAIRS}
    async with asgi_client(app) as client:
        assert (await client.post("/v1/sessions", json=body)).status_code == 401
        r = await client.post("/v1/sessions", json=body, headers=k1)
        assert r.status_code == 201, r.text
        url = f"/v1/sessions/{r.json()['session_id']}/tactics"
        r = await client.post("/v1/sessions", json=body, headers=k1)
        assert r.status_code == 429 and error_of(r)["code"] == "too_many_sessions"
        assert (await client.post("/v1/sessions", json=body, headers=k2)).status_code == 201
        r = await client.post(url, json={"state": 0, "tactic": "fake_unsolved"}, headers=k1)
        assert r.status_code == 200 and set(r.json()) == {"error"}
        assert "whole-file check" in r.json()["error"]
        r = await client.post(url, json={"state": 0, "tactic": "exact (("}, headers=k1)
        assert r.status_code == 200 and set(r.json()) == {"error"}
        r = await client.post(url, json={"state": 0, "tactic": "step"}, headers=k1)
        assert r.json()["goals"] == ["⊢ stairs 2"]


async def test_an_expired_session_over_http_is_410_saying_so() -> None:
    app = create_app(settings(lean_workers=1, session_idle_s=1e-6))  # expired at the next call
    async with asgi_client(app) as client:
        r = await client.post("/v1/sessions", json={"header": HEADER, "statement": STAIRS})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/sessions/{r.json()['session_id']}/tactics",
                              json={"state": 0, "tactic": "step"})
        assert r.status_code == 410 and error_of(r)["code"] == "session_expired"
        assert "expired" in error_of(r)["message"]
        assert "PROVER_SESSION_IDLE_S" in error_of(r)["message"]


async def test_a_cancelled_tactic_leaves_the_other_sessions_on_its_worker_alone() -> None:
    """A cancelled search (or MCP call) abandons its tactic; the REPL it ran on holds other
    clients' sessions too, so the tactic finishes there instead of the REPL being killed."""
    s = fake_settings(None, lean_sandbox="none", lean_workers=1, tactic_workers=1)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        mine, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="search")
        theirs, _ = await sessions.open(header=HEADER, statement=STAIRS, owner="client")
        slow = asyncio.ensure_future(sessions.apply(mine, 0, "step -- fake:sleep=0.5"))
        await asyncio.sleep(0.1)  # the tactic is in the REPL
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        after = await sessions.apply(theirs, 0, "step")
        assert after.kind == "state" and after.goals == ("⊢ stairs 2",)
        assert (await sessions.apply(mine, 0, "step")).kind == "state"


async def test_a_worker_that_died_between_requests_ends_its_sessions_clearly() -> None:
    """Not a Lean error from a fresh REPL that never saw the session's proof states."""
    s = fake_settings(None, lean_sandbox="none", lean_workers=1, tactic_workers=1)
    async with LeanPool(s) as pool:
        sessions = TacticSessions(pool)
        sid, _ = await sessions.open(header=HEADER, statement=STAIRS)
        (host,) = sessions._hosts
        assert host.repl.proc is not None
        proc = host.repl.proc
        os.kill(proc.pid, signal.SIGKILL)  # e.g. the kernel's OOM killer
        for _ in range(500):  # until the event loop has reaped it
            if not proc.alive:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(SessionGone, match="Lean worker stopped"):
            await sessions.apply(sid, 0, "step")
        again, _ = await sessions.open(header=HEADER, statement=STAIRS)
        assert (await sessions.apply(again, 0, "step")).kind == "state"  # a fresh REPL serves
