"""`prover prove` as a user runs it: a real OpenAI-compatible HTTP exchange (a stub server that
answers like a prover model would), the fake REPL, JSON output, exit codes, checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openai_stub import StubServer, openai_stub
from tests.test_cli import prover


def reply(prompt: str) -> str:
    """A 'model' that first writes a proof failing at its second line, then, resumed after
    `intro x` (the verified prefix), finishes it."""
    resumed = prompt.rstrip().endswith("-/") and "intro x" in prompt
    return "  simp\n  rfl\n```" if resumed else "  intro x\n  linarith [fail]\n```"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with openai_stub(reply) as server:
        yield server


def env(stub: StubServer | str) -> dict[str, str]:
    url = stub if isinstance(stub, str) else stub.url
    return {**StubServer(url).env(), "PROVER_LEAN_WORKERS": "1"}


def test_prove_a_statement_with_rmaxts_json(stub: StubServer) -> None:
    done = prover("prove", "--statement", "theorem t1 (a : Nat) : a = a", "--header",
                  "import Mathlib\n", "--budget", "8", "--concurrency", "1", "--json",
                  **env(stub))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) >= {"proved", "proof", "verdict", "samples", "tree_size", "time_s"}
    assert out["proved"] is True and out["verdict"] == "proved"
    assert out["proof"] == ("import Mathlib\ntheorem t1 (a : Nat) : a = a := by\n"
                            "  intro x\n  simp\n  rfl")
    assert out["samples"] == 2 and out["tree_size"] == 2
    # The second request resumed from the verified prefix with its tactic state.
    assert stub.prompts[1].endswith("  intro x\n  /- tactic state:\n"
                                         "    ⊢ a = a [after: intro x]\n  -/\n")


def test_prove_with_sampling_that_fails_exits_1(stub: StubServer) -> None:
    done = prover("prove", "--statement", "theorem t1 (a : Nat) : a = a", "--search",
                  "sampling", "--budget", "3", "--json", **env(stub))
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out == {**out, "proved": False, "proof": None, "samples": 3, "verdict": "failed"}


def test_prove_a_file_and_a_dataset_problem(stub: StubServer, tmp_path: Path) -> None:
    f = tmp_path / "goal.lean"
    f.write_text("import Mathlib\n\ntheorem t1 (a : Nat) : a = a := by\n  sorry\n")
    done = prover("prove", str(f), "--budget", "4", "--concurrency", "1", **env(stub))
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("  intro x\n  simp\n  rfl\n")
    assert "t1: proved after 2 samples" in done.stderr
    done = prover("prove", "--dataset", "minif2f", "--problem", "mathd_algebra_478",
                  "--search", "sampling", "--budget", "1", "--json", **env(stub))
    assert done.returncode == 1, done.stderr
    assert "theorem mathd_algebra_478" in stub.prompts[-1]


def test_prove_resumes_from_a_checkpoint(stub: StubServer, tmp_path: Path) -> None:
    ck = tmp_path / "tree.json"
    args = ("prove", "--statement", "theorem t1 (a : Nat) : a = a", "--budget", "8",
            "--concurrency", "1", "--checkpoint", str(ck), "--json")
    first = prover(*args, **env(stub))
    assert first.returncode == 0 and ck.is_file()
    calls = len(stub.prompts)
    again = prover(*args, **env(stub))
    assert again.returncode == 0 and json.loads(again.stdout)["proved"] is True
    assert len(stub.prompts) == calls  # the proof came from the checkpoint


@pytest.mark.parametrize("args,message", [
    (("prove",), "exactly one of FILE, --statement or --dataset"),
    (("prove", "--dataset", "minif2f"), "--dataset needs --problem"),
    (("prove", "--dataset", "minif2f", "--problem", "no_such_problem"), "no_such_problem"),
    (("prove", "--statement", "def x := 1"), "theorem"),
    (("prove", "--statement", "theorem t : True", "--budget", "0"), "must be positive"),
])
def test_prove_usage_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    done = prover(*args, PROVER_MODEL_BACKEND="openai",
                  PROVER_OPENAI_BASE_URL="http://127.0.0.1:9")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_prove_with_an_unreachable_model_server_says_so() -> None:
    done = prover("prove", "--statement", "theorem t : True", **env("http://127.0.0.1:9"))
    assert done.returncode == 2
    assert "127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
