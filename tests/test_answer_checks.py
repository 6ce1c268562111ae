"""Judging a file against a dataset problem whose header defines what the statement mentions:
PutnamBench's answers (`abbrev …_solution := <answer>`) and the helper definitions of other
headers. The statement must be read right after the submitted header, with the submitted answer,
and every way of changing the problem through the answer must be refused. The fake REPL reads a
file top to bottom as Lean does: a statement cannot mention a definition that comes after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from prover.answers import AnswerError, answer_check, answer_slot
from prover.datasets import Problem, load_problems
from prover.lean import LeanPool, Verdict
from prover.prompts import full_code
from tests.conftest import fake_settings

PROVING = "  nlinarith [sq_nonneg 1]"  # the fake REPL's toy Lean accepts this as a proof
ANSWER = "{f | f = 0}"
NAME = "putnam_1962_a2_solution"


def problem_named(dataset: str, name: str) -> Problem:
    return next(p for p in load_problems(dataset) if p.name == name)


@pytest.fixture(scope="module")
def problem() -> Problem:
    return problem_named("putnambench", "putnam_1962_a2")


def answered(problem: Problem, answer: str, proof: str = PROVING) -> str:
    """The problem's file with `answer` in place of the answer's `sorry`."""
    slot = answer_slot(problem.header)
    assert slot is not None
    code = full_code(problem, proof)
    return code[:slot.start] + answer + code[slot.end:]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[LeanPool]:
    async with LeanPool(fake_settings()) as lean:
        yield lean


@pytest.mark.asyncio(loop_scope="module")
async def test_an_answered_file_is_judged_with_the_statement_read_in_its_header(
        pool: LeanPool, problem: Problem) -> None:
    code = answered(problem, ANSWER)
    request = answer_check(problem, code)
    # The context is the header with the answer: everything before the theorem.
    assert request.context == code[:code.index(problem.formal_statement)]
    assert f"abbrev {NAME} : Set (ℝ → ℝ) := {ANSWER}\n" in request.context
    result = await pool.check(request)
    assert result.verdict is Verdict.PROVED, result
    kept = await pool.check(answer_check(problem, full_code(problem, PROVING)))
    assert kept.verdict is Verdict.INCOMPLETE, kept  # the answer is still `sorry`


@pytest.mark.asyncio(loop_scope="module")
async def test_a_plain_problem_may_mention_its_headers_definitions(pool: LeanPool) -> None:
    """putnam_1997_b1's header defines `dist_to_int`, which its statement uses."""
    problem = problem_named("putnambench-solutions", "putnam_1997_b1")
    assert "noncomputable def dist_to_int" in problem.header
    result = await pool.check(answer_check(problem, full_code(problem, PROVING)))
    assert result.verdict is Verdict.PROVED, result


# What an answer must not be: each is refused before Lean runs, naming why.
REFUSED = {
    "another header line changed": (
        lambda p: answered(p, ANSWER).replace("open MeasureTheory Set", "open Set", 1),
        "unchanged"),
    "the solution defined twice": (
        lambda p: answered(p, ANSWER + f"\n\nabbrev {NAME}' : Set (ℝ → ℝ) := {ANSWER}"),
        "column 0"),
    "the solution redefined in an indented command": (
        lambda p: answered(p, ANSWER + f"\n  abbrev {NAME} : Set (ℝ → ℝ) := ∅"), "`abbrev`"),
    "an instance hidden in the answer": (
        lambda p: answered(p, ANSWER + "\n  instance : LE ℝ := ⟨fun _ _ => True⟩"),
        "`instance`"),
    "an answer that contains sorry": (lambda p: answered(p, "(sorry : Set (ℝ → ℝ))"), "sorry"),
    "an answer running a command": (lambda p: answered(p, ANSWER + "\n  #eval 1"), "`#eval`"),
    "an answer opening a namespace for the statement": (
        lambda p: answered(p, ANSWER + "\n  open Real"), "`open`"),
    "an answer leaving a comment open": (
        lambda p: answered(p, ANSWER + " /-", PROVING + "\n-/"), "unterminated comment"),
    "a changed statement": (
        lambda p: answered(p, ANSWER).replace("0 ≤ f ∧", "True ∨", 1), "exactly as given"),
}


@pytest.mark.parametrize("why", sorted(REFUSED))
def test_an_answer_that_changes_the_problem_is_refused(problem: Problem, why: str) -> None:
    make, reason = REFUSED[why]
    with pytest.raises(AnswerError, match=reason):
        answer_check(problem, make(problem))


def test_an_answer_may_use_terms_that_look_like_commands(problem: Problem) -> None:
    """`open … in` and `set_option … in` are terms; a name may contain a command's word."""
    for term in ("open Real in {f | f = 0}", "{f | f = 0 ∧ Set.prefix_def = Set.prefix_def}"):
        request = answer_check(problem, answered(problem, term))
        assert term in (request.context or "")


@pytest.mark.asyncio(loop_scope="module")
async def test_an_answer_is_scanned_by_the_proof_policy(pool: LeanPool,
                                                        problem: Problem) -> None:
    code = answered(problem, "{f | f = 0 ∧ (by native_decide : (1 : ℕ) = 1) = rfl}")
    result = await pool.check(answer_check(problem, code))
    assert result.verdict is Verdict.REJECTED, result
    assert "native_decide" in (result.rejection or "")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_proof_that_redefines_the_answer_after_the_statement_fails(
        pool: LeanPool, problem: Problem) -> None:
    code = answered(problem, ANSWER, PROVING + f"\n\nabbrev {NAME} : Set (ℝ → ℝ) := ∅\n")
    result = await pool.check(answer_check(problem, code))
    assert result.verdict is Verdict.FAILED, result
    assert any(f"'{NAME}' has already been declared" in m.data for m in result.messages)


@pytest.mark.asyncio(loop_scope="module")
async def test_http_verify_and_batch_read_the_statement_in_the_given_context(
        problem: Problem) -> None:
    """/v1/verify and batch items take `context`: an answer file is proved with its answered
    header as context, fails without (the statement cannot mention the answer), and a file that
    does not begin with the context is rejected."""
    from server.app import create_app
    from tests.server_support import asgi_client, settings

    code = answered(problem, ANSWER)
    header = code[:code.index(problem.formal_statement)]
    other = answered(problem, "∅")
    cases = {"with context": ({"context": header}, "proved"),
             "without": ({}, "failed"),
             "another file": ({"context": header, "code": other}, "rejected")}
    async with asgi_client(create_app(settings())) as client:
        for name, (extra, verdict) in cases.items():
            body = {"code": code, "statement": problem.formal_statement, **extra}
            r = await client.post("/v1/verify", json=body)
            assert r.status_code == 200 and r.json()["verdict"] == verdict, (name, r.text)
        items = [{"id": name, "code": code, "statement": problem.formal_statement, **extra}
                 for name, (extra, _) in cases.items()]
        r = await client.post("/v1/verify/batch", json={"items": items})
        assert r.status_code == 200, r.text
        got = {res["id"]: res["verdict"] for res in r.json()["results"]}
        assert got == {name: verdict for name, (_, verdict) in cases.items()}
