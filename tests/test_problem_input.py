"""What `prover prove` makes of a typed statement or a Lean file."""

import pytest

from prover.lean.source import StatementError
from prover.problem_input import normalise_statement, problem_from_lean_file, problem_from_statement
from prover.prompts import DEFAULT_HEADER


@pytest.mark.parametrize("text", [
    "theorem t (a : Nat) : a = a",
    "theorem t (a : Nat) : a = a :=",
    "theorem t (a : Nat) : a = a := by",
    "  theorem t (a : Nat) : a = a :=   by  \n",
])
def test_statements_end_in_by_and_a_newline(text):
    assert normalise_statement(text).endswith(": a = a := by\n")


def test_statement_gets_the_default_header_and_its_name():
    p = problem_from_statement("theorem foo (x : ℝ) : x ^ 2 ≥ 0")
    assert p.name == "foo" and p.header == DEFAULT_HEADER
    assert p.formal_statement == "theorem foo (x : ℝ) : x ^ 2 ≥ 0 := by\n"
    assert problem_from_statement("theorem foo : True", header="import Mathlib").header == \
        "import Mathlib\n"


def test_not_a_theorem_is_refused_with_a_reason():
    with pytest.raises(StatementError, match="theorem"):
        problem_from_statement("def x := 1")


def test_lean_file_last_theorem_is_the_goal_and_the_rest_the_header():
    text = ("import Mathlib\nopen Real\n\n-- theorem in a comment : False\n"
            "lemma helper : 1 = 1 := rfl\n\n"
            "theorem main (a b : ℕ) (h : a = b) :\n    b = a := by\n  sorry\n")
    p = problem_from_lean_file(text)
    assert p.name == "main"
    assert p.header == "import Mathlib\nopen Real\n\n-- theorem in a comment : False\n" \
        "lemma helper : 1 = 1 := rfl\n\n"
    assert p.formal_statement == "theorem main (a b : ℕ) (h : a = b) :\n    b = a := by\n"


def test_lean_file_without_a_theorem():
    with pytest.raises(StatementError, match="no `theorem`"):
        problem_from_lean_file("import Mathlib\ndef x := 1\n")
