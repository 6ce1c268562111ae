"""Reading Lean text without Lean: header split, statements, and the forbidden-construct scan."""

from __future__ import annotations

import pytest

from prover.lean import policy
from prover.lean.names import declared_theorems
from prover.lean.source import (
    StatementError,
    mask_comments_and_strings,
    parse_statement,
    split_source,
)

MINIF2F_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


def test_split_keeps_open_in_and_set_option_in_with_the_declaration() -> None:
    code = MINIF2F_HEADER + "set_option maxHeartbeats 0 in\ntheorem t : True := trivial\n"
    split = split_source(code)
    assert split.imports == ("Mathlib", "Aesop")
    assert "open BigOperators" in split.header_rest
    assert split.body.lstrip().startswith("set_option maxHeartbeats 0 in")
    # body line k is file line k + offset: the `in` line is line 8 of the file
    body_line = split.body.splitlines().index("set_option maxHeartbeats 0 in") + 1
    assert body_line + split.body_line_offset == 8


def test_headers_differing_only_in_comments_share_a_key() -> None:
    a = split_source(MINIF2F_HEADER + "theorem t : True := trivial")
    b = split_source(MINIF2F_HEADER.replace("open", "-- a comment\nopen") + "theorem t : True")
    assert a.key == b.key
    c = split_source(MINIF2F_HEADER.replace("Rat", "Finset") + "theorem t : True")
    assert c.key != a.key and c.key.imports_only == a.key.imports_only


def test_statement_parsing() -> None:
    st = parse_statement("theorem mathd_algebra_10 (x : ℝ) (h : x = 2) :\n  x + 1 = 3 := by\n")
    assert st.name == "mathd_algebra_10"
    assert st.signature == "(x : ℝ) (h : x = 2) :\n  x + 1 = 3"
    assert parse_statement("lemma foo : 1 = 1 :=").name == "foo"
    with pytest.raises(StatementError):
        parse_statement("example : 1 = 1 := by")
    with pytest.raises(StatementError):
        parse_statement("theorem foo : 1 = 1 := rfl")


def test_a_statement_may_bind_with_let_and_have_but_not_carry_a_proof() -> None:
    """44 PutnamBench and ProofNet-Verified statements bind in their type (`let ⟨a, b⟩ :=
    putnam_…_solution; …`) or name arguments inside brackets; only a `:=` that nothing binds
    starts a proof."""
    let = ("theorem t (s : ℕ × ℕ) :\n    let ⟨a, b⟩ := s\n    letI : Fact (a = a) := ⟨rfl⟩\n"
           "    a ≤ a + b := by\n")
    assert parse_statement(let).signature.endswith("a ≤ a + b")
    inside = "theorem t : {q : ℕ × ℕ | let ⟨n, _⟩ := q; n = 1} = f (x := 2) :="
    assert parse_statement(inside).signature.endswith("f (x := 2)")
    for proof in ("theorem t : let x := 1; x = 1 := rfl", "theorem t : 1 = 1 := rfl := by",
                  "theorem t (h : True) : (have _ := h; True) := trivial"):
        with pytest.raises(StatementError, match="must not contain a proof"):
            parse_statement(proof)


def test_masking_hides_comments_and_strings_but_keeps_positions() -> None:
    text = 'a -- sorry\n/- axiom /- nested -/ still -/ b "#eval" c'
    masked = mask_comments_and_strings(text)
    assert len(masked) == len(text) and masked.count("\n") == 1
    assert "sorry" not in masked and "axiom" not in masked and "#eval" not in masked
    assert masked.split() == ["a", "b", '"', '"', "c"]


def test_declared_theorems_ignores_comments() -> None:
    body = "-- theorem fake : False\nlemma helper : True := trivial\ntheorem main : True := helper"
    assert declared_theorems(body) == ("helper", "main")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("axiom cheat : False", "axiom"),
        ("  exact by native_decide", "native_decide"),
        ("@[implemented_by foo] def f := 1", "implemented_by"),
        ("#exit", "#exit"),
        ("#eval IO.println 1", "#eval"),
        ("set_option debug.skipKernelTC true in", "set_option debug.skipKernelTC"),
        ("local notation \"x\" => 1", "notation"),
        ("open Lean Elab in", "Lean"),
    ],
)
def test_scan_finds_forbidden_constructs(text: str, word: str) -> None:
    found = policy.scan("theorem t : True := trivial\n" + text)
    assert found is not None and found.word == word and found.line == 2


@pytest.mark.parametrize(
    "text",
    [
        "theorem t (h_unsafe : True) : True := h_unsafe",
        "-- no axiom, no sorry, no #eval here\ntheorem t : True := trivial",
        "theorem t : True := by\n  induction n using Nat.strong_induction_on with\n"
        "  | _ => trivial",
        "theorem t (hprefix : True) (macro_free : True) : True := hprefix",
    ],
)
def test_scan_leaves_honest_text_alone(text: str) -> None:
    assert policy.scan(text) is None


def test_native_decide_is_allowed_only_by_setting() -> None:
    text = "theorem t : 2 + 2 = 4 := by native_decide"
    assert policy.scan(text) is not None
    assert policy.scan(text, allow_native_decide=True) is None
