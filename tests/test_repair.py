"""`--search repair`: a chat prover's failed proofs go back to it with Lean's errors.

End to end as a user runs it (`prover prove` against a scripted OpenAI-compatible server and the
fake REPL), and the search's bookkeeping on scripted backends: rounds, corrections per failed
attempt, the budget counting every generation, answers without code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.protocol import Message, Pos
from prover.lean.verdict import CheckResult, Verdict
from prover.model.base import Chat
from prover.model.scripted import ScriptedGenerator
from prover.problem_input import problem_from_statement
from prover.profiles import get_profile
from search import SearchConfig, SearchProgress, SearchSetupError, search_proof
from tests.openai_stub import StubServer, openai_stub
from tests.test_cli import prover

STATEMENT = "theorem t1 (a : Nat) : a = a"
FIRST = ("Plan: introduce, then close with linarith.\n"
         "```lean4\nimport Mathlib\n\ntheorem t1 (a : Nat) : a = a := by\n"
         "  intro x\n  linarith [fail]\n```\n")
FIXED = ("The error says linarith cannot close it; `simp` can.\n"
         "```lean4\ntheorem t1 (a : Nat) : a = a := by\n  intro x\n  simp\n```")


def reply(messages: Any) -> str:
    """A chat 'model' whose first answer fails at its second tactic and whose answer to a
    correction turn (a conversation of more than the first turn) is right."""
    assert isinstance(messages, list), "a chat profile must use the chat endpoint"
    return FIXED if messages[-1]["content"].startswith(("The proof (Round", "# Error")) \
        else FIRST


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with openai_stub(reply) as server:
        yield server


def run(stub: StubServer, *args: str) -> dict[str, Any]:
    done = prover("prove", "--statement", STATEMENT, "--header", "import Mathlib\n", "--json",
                  *args, **stub.env(), PROVER_LEAN_WORKERS="1")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_goedel_repairs_a_proof_from_lean_s_error(stub: StubServer) -> None:
    out = run(stub, "--profile", "goedel-v2", "--samples", "1", "--concurrency", "1")
    # Verified by Lean (the fake REPL) as a whole file: our header and statement, its proof.
    assert out["proved"] is True and out["verdict"] == "proved"
    assert out["proof"] == "import Mathlib\ntheorem t1 (a : Nat) : a = a := by\n  intro x\n  simp"
    assert out["samples"] == 2 and out["round"] == 1
    assert stub.prompts == []  # nothing went to /v1/completions
    first, second = stub.chats
    assert first == [{"role": "user", "content": (
        "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n"
        "theorem t1 (a : Nat) : a = a := by sorry```\n\n"
        "Before producing the Lean 4 code to formally prove the given theorem, provide a "
        "detailed proof plan outlining the main proof steps and strategies.\nThe plan should "
        "highlight key ideas, intermediate lemmas, and proof structures that will guide the "
        "construction of the final formal proof.")}]
    # The correction holds the first conversation and answer, then Lean's error in place.
    assert second[:2] == [first[0], {"role": "assistant", "content": FIRST}]
    assert second[2] == {"role": "user", "content": (
        "The proof (Round 0) is not correct. Following is the compilation error message, "
        "where we use <error></error> to signal the position of the error.\n\n"
        "\nError 1:\n\nCorresponding Code:\n```lean4\n"
        "theorem t1 (a : Nat) : a = a := by\n"
        "  intro x\n"
        "  <error>linarith [fail]</error>\n"
        "\n```\n"
        "\nError Message: linarith failed to find a contradiction\n"
        "\n\nBefore producing the Lean 4 code to formally prove the given theorem, provide a "
        "detailed analysis of the error message.")}


def test_kimina_fix_turn_shows_the_goals_before_the_error(stub: StubServer) -> None:
    out = run(stub, "--profile", "kimina-prover", "--samples", "1", "--concurrency", "1")
    assert out["proved"] is True and out["round"] == 1
    first, second = stub.chats
    assert first[0]["role"] == "system" and second[:3] == [*first, second[2]]
    assert second[2]["content"] == FIRST
    assert second[3] == {"role": "user", "content": (
        "# Error 1:\n"
        "Goals state before error position: \n⊢ a = a [after: intro x]\n\n"
        "Error message: \nlinarith failed to find a contradiction\n\n"
        "Lean 4 code snippet with error:\n```lean4\n"
        "001  | theorem t1 (a : Nat) : a = a := by\n"
        "002  |   intro x\n"
        "003 >|   linarith [fail]\n"
        "```\n")}


@pytest.mark.parametrize("args, message", [
    (("--profile", "goedel-v2", "--rounds", "-1"), "--rounds: must be 0 or more"),
    (("--profile", "goedel-v2", "--corrections", "-2"), "--corrections: must be 0 or more"),
    (("--profile", "claude-prover"), "invalid choice: 'claude-prover'"),
    (("--profile", "goedel-v2", "--search", "rmaxts"), "use --search repair or sampling"),
    (("--search", "repair"), "use a chat profile"),
    (("--profile", "kimina-prover", "--search", "bfs"), "use --search repair or sampling"),
])
def test_bad_repair_usage_exits_2(stub: StubServer, args: tuple[str, ...], message: str) -> None:
    done = prover("prove", "--statement", STATEMENT, *args, **stub.env())
    assert done.returncode == 2 and message in done.stderr, done.stderr
    if "invalid choice" in message:
        assert "deepseek-v1.5" in done.stderr and "kimina-prover" in done.stderr


# --------------------------------------------------------------------------- the search itself


class ToyLean:
    """Proves a body containing `simp`; any other body fails with an error on its last line."""

    def __init__(self) -> None:
        self.checks = 0

    async def check(self, request: CheckRequest) -> CheckResult:
        self.checks += 1
        if "simp" in request.code:
            return CheckResult(Verdict.PROVED)
        line = request.code.count("\n") + 1
        return CheckResult(Verdict.FAILED, messages=(
            Message("error", Pos(line, 2), None, "linarith failed"),))


def problem() -> Problem:
    return problem_from_statement(STATEMENT, header="import Mathlib\n")


async def repair(script: Any, **config: Any) -> tuple[Any, ScriptedGenerator, ToyLean,
                                                     list[SearchProgress]]:
    generator, lean, events = ScriptedGenerator(script), ToyLean(), []
    result = await search_proof(problem(), generator, lean,
                                SearchConfig(algorithm="repair", **config),
                                profile=get_profile("goedel-v2"), progress=events.append)
    return result, generator, lean, events


def never_right(prompt: Chat, seed: int) -> str:
    return "```lean4\ntheorem t1 (a : Nat) : a = a := by\n  linarith\n```"


async def test_every_failed_attempt_gets_corrections_each_round() -> None:
    result, generator, _, events = await repair(never_right, samples=2, corrections=2,
                                                rounds=2, budget=100)
    # 2 first samples, 2 x 2 corrections, then 4 x 2: every generation is counted.
    assert result.samples == 2 + 4 + 8 and not result.proved
    assert sorted(len(p) for p in generator.prompts) == [1] * 2 + [3] * 4 + [5] * 8
    assert [e.round for e in events].count(2) == 8 and {e.rounds for e in events} == {2}


async def test_the_budget_counts_corrections() -> None:
    result, generator, _, _ = await repair(never_right, samples=2, corrections=2, rounds=2,
                                           budget=5, concurrency=1)
    assert result.samples == 5 and len(generator.prompts) == 5


async def test_no_rounds_is_plain_sampling() -> None:
    result, generator, _, _ = await repair(never_right, samples=3, rounds=0)
    assert result.samples == 3 and all(len(p) == 1 for p in generator.prompts)


async def test_a_proof_in_a_later_round_ends_the_search() -> None:
    def second_round_fixes(prompt: Chat, seed: int) -> str:
        code = "simp" if len(prompt) == 5 else "linarith"
        return f"```lean4\ntheorem t1 (a : Nat) : a = a := by\n  {code}\n```"

    result, _, _, _ = await repair(second_round_fixes, samples=1, corrections=1, rounds=3,
                                   concurrency=1)
    assert result.proved and result.round == 2 and result.samples == 3
    assert result.to_json()["round"] == 2


async def test_an_answer_without_code_fails_with_a_reason_and_is_not_corrected() -> None:
    result, _, lean, events = await repair(lambda p, s: "I would use simp.",
                                           samples=2, concurrency=1)
    assert not result.proved and result.samples == 2 and lean.checks == 0
    assert result.check is not None and "no ```lean4 code block" in (result.check.error or "")
    assert [e.verdict for e in events] == ["failed", "failed"]


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rounds must be >= 0"):
        SearchConfig(algorithm="repair", rounds=-1)
    with pytest.raises(ValueError, match="corrections must be >= 0"):
        SearchConfig(algorithm="repair", corrections=-1)


async def test_rmaxts_needs_a_raw_text_profile() -> None:
    with pytest.raises(SearchSetupError, match="use --search repair or sampling"):
        await search_proof(problem(), ScriptedGenerator(never_right), ToyLean(),
                           SearchConfig(algorithm="rmaxts"), profile=get_profile("goedel-v2"))


async def test_bfs_needs_a_raw_text_profile() -> None:
    """Best-first search prompts a step prover with a bare proof state, which a chat prover's
    format cannot carry: refused before any model call, naming the searches that fit."""
    generator = ScriptedGenerator(never_right)
    with pytest.raises(SearchSetupError, match=r"profile goedel-v2 .* use --search repair or "
                       r"sampling"):
        await search_proof(problem(), generator, ToyLean(), SearchConfig(algorithm="bfs"),
                           profile=get_profile("goedel-v2"))
    assert generator.prompts == []
