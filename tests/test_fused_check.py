"""One REPL command per proof (prover/lean/fused.py): fewer round trips, no check weakened.

The fake REPL runs the real command texts; hand-made responses play a Lean that puts messages
where an attacker would want them, since the toy Lean cannot be made to.
"""

from __future__ import annotations

import pytest

from prover.lean import CheckRequest, LeanPool, Verdict
from prover.lean.checker import PreparedCheck, judge_audit, prepare
from prover.lean.fused import attribute, layout, open_tail
from prover.lean.protocol import CommandResponse, Message, Pos, Sorry, TacticInfo
from prover.lean.source import parse_statement, split_source
from tests.conftest import fake_settings

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
STATEMENT = "theorem t1 (x : ℕ) (h : x = 2) : x + 0 = 2 := by"
REF = "__prover_ref_000000000000"


def code(tactic: str) -> str:
    return f"{HEADER}{STATEMENT}\n  {tactic}\n"


def lay_for(text: str):  # type: ignore[no-untyped-def]
    split = split_source(text)
    statement = parse_statement(STATEMENT)
    return split, layout(split, statement, REF, (statement.name,))


def info(line: int, data: str, severity: str = "info") -> Message:
    return Message(severity, Pos(line, 0), Pos(line, 5), data)


def test_layout_puts_reference_fence_body_and_audit_on_their_own_lines() -> None:
    split, lay = lay_for(code("simp [h]"))
    lines = lay.text.splitlines()
    assert lines[0].startswith(f"theorem {REF} (x : ℕ) (h : x = 2) : x + 0 = 2 := sorry")
    assert lines[1] == f"#print axioms _root_.{REF}"  # the fence nothing can continue
    assert lay.prelude_lines == 2
    assert lines[lay.prelude_lines:lay.body_last] == split.body.splitlines()
    assert lines[lay.body_last:] == [
        "#print axioms _root_.t1",
        "set_option pp.all true in #check @_root_.t1",
        f"set_option pp.all true in #check @_root_.{REF}",
    ]
    assert lay.text.endswith("\n")  # end of input sits past the last audit query


def test_attribution_drops_the_references_sorry_and_maps_the_body_to_file_lines() -> None:
    split, lay = lay_for(code("sorry"))
    body_first = lay.prelude_lines + 1 + split.body.splitlines().index(STATEMENT)
    resp = CommandResponse(
        env=5,
        messages=(
            info(1, "declaration uses 'sorry'", "warning"),  # the reference's own
            info(2, f"'{REF}' depends on axioms: [sorryAx]"),  # the fence's answer
            info(body_first, "declaration uses 'sorry'", "warning"),  # the proof's
            info(lay.audit_first, "'t1' depends on axioms: [sorryAx]"),
            info(lay.audit_first + 5, "unterminated comment", "error"),  # past the audit
        ),
        sorries=(
            Sorry(0, "⊢ x + 0 = 2", Pos(1, 60), Pos(1, 65)),
            Sorry(1, "⊢ x + 0 = 2", Pos(body_first + 1, 2), Pos(body_first + 1, 7)),
        ),
        tactics=(
            TacticInfo("sorry", 2, "⊢", Pos(body_first + 1, 2), None, ()),
            TacticInfo("rfl", 3, "⊢", Pos(lay.audit_first, 0), None, ()),
        ),
    )
    got = attribute(resp, lay, split.body_line_offset)
    file_line = code("sorry").splitlines().index(STATEMENT) + 1  # in the user's file
    assert code("sorry").splitlines()[file_line - 1] == STATEMENT
    assert [m.data for m in got.prelude] == ["declaration uses 'sorry'",
                                             f"'{REF}' depends on axioms: [sorryAx]"]
    assert [(m.pos.line, m.data) for m in got.messages] == [
        (file_line, "declaration uses 'sorry'"),
        (file_line + 1, "unterminated comment"),  # shown at the file's last line
    ]
    assert [s.pos for s in got.sorries] == [Pos(file_line + 1, 2)]
    assert [t.tactic for t in got.tactics] == ["sorry"]  # nothing from the added lines
    assert list(got.audit) == [0]


@pytest.mark.parametrize(
    ("answers", "verdict", "reason"),
    [
        # A second answer on the axioms line (say, from a trailing `in`) cannot be attributed.
        ({0: (info(9, "'t1' does not depend on any axioms"),
              info(9, "'t1' depends on axioms: [sorryAx]"))},
         Verdict.REJECTED, "could not read the axioms"),
        ({}, Verdict.REJECTED, "could not read the axioms"),
        ({0: (info(9, "unknown constant 't1'", "error"),)}, Verdict.REJECTED, "not declared"),
        # A linter warning next to the answer does not hide it.
        ({0: (info(9, "'t1' depends on axioms: [propext]"), info(9, "style", "warning")),
          1: (info(10, "@t1 : A"),), 2: (info(11, f"@{REF} : A"),)}, Verdict.PROVED, None),
        ({0: (info(9, "'t1' depends on axioms: [propext]"),),
          1: (info(10, "@t1 : A"), info(10, "@t1 : B")), 2: (info(11, f"@{REF} : B"),)},
         Verdict.REJECTED, "could not compare"),
        ({0: (info(9, "'t1' depends on axioms: [propext]"),),
          1: (info(10, "@t1 : A"),), 2: (info(11, f"@{REF} : B"),)},
         Verdict.REJECTED, "not the statement asked for"),
    ],
)
def test_audit_answers_must_be_one_per_line(
    answers: dict[int, tuple[Message, ...]], verdict: Verdict, reason: str | None
) -> None:
    got, _axioms, why = judge_audit(answers, ("t1",), True, False)
    assert got is verdict
    assert (why is None) if reason is None else (reason in (why or ""))


@pytest.mark.parametrize(
    ("tail", "refused"),
    [
        ("/- open comment", True),
        ("/- closed -/ /- nested /- -/ still open", True),
        ('#check "open string', True),
        ("open Real in", True),
        ("set_option maxRecDepth 10 in\n\n", True),
        ("-- a line comment ends at the line break", False),
        ("theorem x : ∑ i in Finset.range 2, i = 1 := by\n  simp", False),
        ("/- closed -/", False),
    ],
)
def test_a_body_that_would_reach_the_audit_is_refused(tail: str, refused: bool) -> None:
    assert (open_tail(f"theorem a : True := trivial\n{tail}") is not None) is refused


async def test_one_repl_command_per_check_once_the_header_is_held(commands: list[str]) -> None:
    cases = {"simp [h]": Verdict.PROVED, "fail": Verdict.FAILED, "sorry": Verdict.INCOMPLETE}
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        await pool.check(CheckRequest(code=code("simp [h]"), statement=STATEMENT))
        commands.clear()
        for tactic, verdict in cases.items():
            other = STATEMENT.replace("t1", f"t_{len(commands)}")
            text = f"{HEADER}{other}\n  {tactic}\n"
            result = await pool.check(CheckRequest(code=text, statement=other))
            assert result.verdict is verdict, result
    assert len(commands) == len(cases)


async def test_verdict_positions_are_the_users_lines() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        failed = await pool.check(CheckRequest(code=code("fail"), statement=STATEMENT))
        incomplete = await pool.check(CheckRequest(code=code("sorry"), statement=STATEMENT))
    tactic_line = len(code("fail").splitlines())  # the tactic is the file's last line
    assert failed.verdict is Verdict.FAILED
    assert [m.pos.line for m in failed.messages if m.is_error] == [tactic_line]
    assert incomplete.verdict is Verdict.INCOMPLETE
    assert [s.pos.line for s in incomplete.sorries if s.pos] == [tactic_line]
    warnings = [m for m in incomplete.messages if m.severity == "warning"]
    assert [m.pos.line for m in warnings] == [tactic_line - 1]  # the proof's, not the reference's


# ---------------------------------------------------------------------- namespaces


def test_a_namespaced_statement_is_elaborated_in_its_namespace_under_a_top_level_name() -> None:
    split = split_source(code("simp [h]"))
    dotted = parse_statement(STATEMENT.replace("t1", "Foo.Bar.t1"))
    lay = layout(split, dotted, REF, ("Foo.Bar.t1",))
    assert lay.text.splitlines()[:4] == [
        "namespace Foo.Bar",  # as Lean elaborates `theorem Foo.Bar.t1`
        f"theorem _root_.{REF} (x : ℕ) (h : x = 2) : x + 0 = 2 := sorry",
        "end Foo.Bar",
        f"#print axioms _root_.{REF}",
    ]
    assert lay.audit[0] == "#print axioms _root_.Foo.Bar.t1"
    # In a context that leaves namespace Foo open, the reference stays at the top level.
    inside = layout(split, parse_statement(STATEMENT), REF, ("Foo.t1",), "Foo")
    assert inside.text.startswith(f"theorem _root_.{REF} (x : ℕ)")
    assert inside.audit[-2:] == ("set_option pp.all true in #check @_root_.Foo.t1",
                                 f"set_option pp.all true in #check @_root_.{REF}")


NAMESPACED = HEADER + """namespace Foo.Bar

private lemma helper (x : ℕ) (h : x = 2) : x + 0 = 2 := by
  simp [h]

protected theorem t1 (x : ℕ) (h : x = 2) : x + 0 = 2 := by
  exact helper x h

end Foo.Bar
"""


def test_without_a_statement_namespaced_theorems_are_audited_by_full_name() -> None:
    prepared = prepare(CheckRequest(code=NAMESPACED), fake_settings())
    assert isinstance(prepared, PreparedCheck)
    assert prepared.targets == ("Foo.Bar.helper", "Foo.Bar.t1")


async def test_namespaced_theorems_are_proved_and_checked_against_the_statement() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        plain = await pool.check(CheckRequest(code=NAMESPACED))
        assert plain.verdict is Verdict.PROVED, plain
        full = STATEMENT.replace("t1", "Foo.Bar.t1")
        asked = await pool.check(CheckRequest(code=NAMESPACED, statement=full))
        assert asked.verdict is Verdict.PROVED, asked
        short = await pool.check(CheckRequest(code=NAMESPACED, statement=STATEMENT))
        assert short.verdict is Verdict.REJECTED
        assert "it declares `Foo.Bar.t1`" in (short.rejection or "")
        # The same file given with its namespace as the statement's context.
        context = HEADER + "namespace Foo.Bar\n"
        with_context = await pool.check(CheckRequest(code=NAMESPACED, statement=STATEMENT,
                                                     context=context))
        assert with_context.verdict is Verdict.PROVED, with_context
        changed = await pool.check(CheckRequest(code=NAMESPACED, statement=STATEMENT,
                                                context=HEADER + "namespace Foo\n"))
        assert changed.verdict is Verdict.REJECTED
        assert "does not begin with the statement's context" in (changed.rejection or "")
