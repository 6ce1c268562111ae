"""Truncate-and-resume: where an attempt is cut and which tactic steps it yields."""

from __future__ import annotations

from prover.lean.protocol import Message, Pos, Sorry, TacticInfo
from prover.lean.verdict import CheckResult, Verdict
from search.segments import NO_GOALS, Step, first_failure, steps, verified_prefix

HEAD = "import Mathlib\ntheorem t (a : Nat) : a = a := by\n"
START = len(HEAD)


def tac(text: str, line: int, col: int, goals: str) -> TacticInfo:
    return TacticInfo(text, None, goals, Pos(line, col), Pos(line, col + len(text)), ())


def err(line: int, col: int, text: str = "linarith failed") -> Message:
    return Message("error", Pos(line, col), None, text)


def test_cut_at_first_error_in_the_body_ignoring_unsolved_goals_at_by():
    body = "  intro x\n  simp\n  linarith\n  ring\n"
    code = HEAD + body
    result = CheckResult(Verdict.FAILED, messages=(
        err(2, 31, "unsolved goals\n⊢ a = a"),  # at `by`, before the body
        err(6, 2),  # the later error
        err(5, 2),  # the first error in the body: `linarith`
    ))
    assert first_failure(code, START, result.messages, ()) == code.index("linarith")
    assert verified_prefix(code, START, result) == "  intro x\n  simp\n"


def test_cut_at_a_sorry_and_at_a_mid_line_error():
    code = HEAD + "  intro x\n  simp; sorry\n"
    result = CheckResult(Verdict.INCOMPLETE, sorries=(Sorry(None, "⊢ a = a", Pos(4, 8), None),))
    assert verified_prefix(code, START, result) == "  intro x\n"
    mid = CheckResult(Verdict.FAILED, messages=(err(4, 8, "type mismatch"),))
    assert verified_prefix(HEAD + "  intro x\n  exact foo bar\n", START, mid) == "  intro x\n"


def test_nothing_verified_when_the_first_line_fails_and_no_cut_for_timeouts():
    code = HEAD + "  linarith\n"
    assert verified_prefix(code, START, CheckResult(Verdict.FAILED, messages=(err(3, 2),))) == ""
    assert verified_prefix(code, START, CheckResult(Verdict.TIMEOUT)) is None
    assert verified_prefix(code, START, CheckResult(Verdict.SYSTEM_ERROR)) is None


def test_whole_body_kept_when_only_goals_remain():
    code = HEAD + "  intro x\n  simp\n\n"
    result = CheckResult(Verdict.FAILED, messages=(err(2, 31, "unsolved goals\n⊢ x"),))
    assert verified_prefix(code, START, result) == "  intro x\n  simp\n"


def test_steps_read_the_state_after_each_line_from_the_next_lines_goals():
    body = "  intro x\n  simp\n  skip\n  ring_nf\n"
    code = HEAD + body
    tactics = (
        tac("intro x", 3, 2, "⊢ a = a"),
        tac("simp", 4, 2, "x : Nat\n⊢ a = a"),
        tac("skip", 5, 2, "x : Nat\n⊢ a = 0"),
        tac("ring_nf", 6, 2, "x : Nat\n⊢ a = 0"),  # `skip` changed nothing: no step
    )
    out = steps(code, START, len(code), tactics, final_state="x : Nat\n⊢ 0 = 0",
                root_state="⊢ a = a")
    assert out == [
        Step("  intro x\n", "x : Nat\n⊢ a = a", 2),
        Step("  intro x\n  simp\n", "x : Nat\n⊢ a = 0", 2),
        Step("  intro x\n  simp\n  skip\n  ring_nf\n", "x : Nat\n⊢ 0 = 0", 2),
    ]


def test_nested_blocks_give_the_inner_goal_and_the_inner_indent():
    body = "  have h : a = a := by\n    rfl\n  exact h\n"
    code = HEAD + body
    tactics = (
        tac("have h : a = a := by\n    rfl", 3, 2, "⊢ a = a"),
        tac("rfl", 4, 4, "⊢ a = a (inner)"),
        tac("exact h", 5, 2, "h : a = a\n⊢ a = a"),
    )
    out = steps(code, START, len(code), tactics, final_state=NO_GOALS)
    assert [(s.prefix.count("\n"), s.state, s.indent) for s in out] == [
        (1, "⊢ a = a (inner)", 4),
        (2, "h : a = a\n⊢ a = a", 2),
        (3, NO_GOALS, 2),
    ]


def test_tactics_past_the_cut_and_in_the_header_are_ignored():
    code = HEAD + "  intro x\n  simp\n  ring\n"
    cut = code.index("  ring")
    tactics = (
        tac("decide", 1, 0, "header goal"),
        tac("intro x", 3, 2, "⊢ a = a"),
        tac("simp", 4, 2, "x : Nat\n⊢ a = a"),
        tac("ring", 5, 2, "PAST THE CUT"),
    )
    out = steps(code, START, cut, tactics, final_state=None)
    assert [s.state for s in out] == ["x : Nat\n⊢ a = a"]
