"""`prover.dojo.Dojo` with the real lean_dojo package: a LeanDojo Theorem from a local checkout,
driven tactic by tactic through the local pool and through the sessions API, answering with
lean_dojo's own classes. Lean is the fake REPL's stairs world (see test_tactic_sessions.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

# lean_dojo reads these when imported: keep its cache out of $HOME and never go online.
os.environ.setdefault("CACHE_DIR", tempfile.mkdtemp(prefix="lean-dojo-cache-"))
os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")

from lean_dojo import (
    DojoCrashError,
    DojoInitError,
    DojoTacticTimeoutError,
    LeanError,
    LeanGitRepo,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
)

from prover.dojo import Dojo
from server.app import create_app
from tests.conftest import fake_settings
from tests.server_support import live_server, settings

SOURCE = """import Mathlib

theorem warm_up : True := trivial

theorem climb (n : Nat) : stairs 3 := by
  step
  step
  step

namespace Stairs

variable (m : Nat)

/-- Same short name (another binder), inside a namespace: LeanDojo's `Stairs.climb`. -/
theorem climb (k : Nat) : stairs 3 := by
  step
  step
  step

end Stairs
"""


@pytest.fixture
def theorem(tmp_path: Path) -> Theorem:
    repo = tmp_path / "stairs"
    (repo / "Stairs").mkdir(parents=True)
    (repo / "Stairs" / "Basic.lean").write_text(SOURCE)
    (repo / "lean-toolchain").write_text("leanprover/lean4:v4.9.0-rc1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "stairs"], check=True)
    return Theorem(LeanGitRepo.from_path(repo), "Stairs/Basic.lean", "climb")


def drive(dojo_args: dict[str, object], theorem: Theorem) -> list[object]:
    """A ReProver-style client: wrong tactic, then the right ones, then a give-up attempt."""
    seen: list[object] = []
    with Dojo(theorem, **dojo_args) as (dojo, state):  # type: ignore[arg-type]
        assert isinstance(state, TacticState) and state.pp == "⊢ stairs 3"
        assert state.num_goals == 1 and state.goals[0].conclusion == "stairs 3"
        seen.append(dojo.run_tac(state, "nlinarith [sq_nonneg n]"))
        assert isinstance(dojo.run_tac(state, "sorry"), ProofGivenUp)
        for _ in range(3):
            result = dojo.run_tac(state, "step")
            seen.append(result)
            if isinstance(result, TacticState):
                state = result
        assert dojo.is_successful
    return seen


def check(seen: list[object]) -> None:
    error, one, two, done = seen
    assert isinstance(error, LeanError) and "unknown tactic" in error.error
    assert isinstance(one, TacticState) and one.pp == "⊢ stairs 2"
    assert isinstance(two, TacticState) and two.pp == "⊢ stairs 1"
    assert isinstance(done, ProofFinished) and done.tactic_state_id == two.id + 1


def test_dojo_on_the_local_pool(theorem: Theorem) -> None:
    check(drive({"settings": fake_settings(None, lean_sandbox="none")}, theorem))


async def test_dojo_through_the_sessions_api(theorem: Theorem) -> None:
    app_settings = settings(lean_workers=1)
    app = create_app(app_settings)
    async with live_server(app, app_settings) as url:
        check(await asyncio.to_thread(drive, {"url": url}, theorem))

        def crash() -> None:
            with Dojo(theorem, url=url) as (dojo, state):
                dojo.run_tac(state, "step -- fake:crash")

        with pytest.raises(DojoCrashError, match="Lean worker stopped"):
            await asyncio.to_thread(crash)


def test_dojo_on_a_namespaced_theorem(theorem: Theorem) -> None:
    """The finished proof is re-checked by the whole-file check under its full name, with the
    file before it as the statement's context."""
    namespaced = Theorem(theorem.repo, theorem.file_path, "Stairs.climb")
    check(drive({"settings": fake_settings(None, lean_sandbox="none")}, namespaced))


def test_a_tactic_past_leandojos_timeout_is_its_timeout_error(theorem: Theorem) -> None:
    with Dojo(theorem, timeout=1, settings=fake_settings(None, lean_sandbox="none")) as (
            dojo, state), pytest.raises(DojoTacticTimeoutError, match="PROVER_TACTIC_TIMEOUT"):
        dojo.run_tac(state, "step -- fake:hang")


def test_a_theorem_not_checked_out_here_says_how_to_get_it(theorem: Theorem,
                                                          tmp_path: Path) -> None:
    moved = Theorem(theorem.repo, "Stairs/Missing.lean", "climb")
    with pytest.raises(DojoInitError, match=r"Missing\.lean"):
        Dojo(moved, settings=fake_settings(None))
    subprocess.run(["git", "-C", str(theorem.repo.url), "-c", "user.name=t", "-c",
                    "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "later"], check=True)
    with pytest.raises(DojoInitError, match="not at commit"):
        Dojo(theorem, settings=fake_settings(None))


def test_a_service_that_cannot_be_reached_is_an_init_error(theorem: Theorem) -> None:
    """Opening is LeanDojo's initialisation: a search loop that catches DojoInitError to skip a
    theorem must not see a DojoCrashError (which it reads as a crash mid-proof)."""
    from tests.fixtures.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(DojoInitError, match=f"prover service at {url} cannot be reached"):
        Dojo(theorem, url=url).__enter__()
