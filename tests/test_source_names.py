"""Theorem names under namespaces (prover/lean/names.py) and files split at a statement's context
(prover/lean/source.py), without Lean."""

from __future__ import annotations

import pytest

from prover.lean.names import declared_theorems, qualify, scan
from prover.lean.source import ContextError, split_source, split_with_context

HEADER = "import Mathlib\nimport Aesop\n\nopen BigOperators Real Nat\n\n"


def test_theorems_are_named_by_their_namespaces_and_sections() -> None:
    body = """
theorem top : True := trivial
namespace A.B
theorem inner : True := trivial
section S
variable (n : Nat)
protected theorem prot : True := trivial
private lemma priv : True := trivial
end S
theorem C.dotted : True := trivial
theorem _root_.escaped : True := trivial
theorem univ.{u} (α : Sort u) : True := trivial
end B
theorem in_a : True := trivial
end A
noncomputable section
theorem in_section : True := trivial
end
mutual
theorem even_odd : True := trivial
end
/- namespace Fake
theorem commented : True := trivial -/
theorem last : True := trivial
"""
    assert declared_theorems(body) == (
        "top", "A.B.inner", "A.B.prot", "A.B.priv", "A.B.C.dotted", "escaped", "A.B.univ",
        "A.in_a", "in_section", "even_odd", "last",
    )


def test_a_body_can_start_inside_a_namespace_and_leave_it() -> None:
    result = scan("theorem t : True := trivial\nend Foo\ntheorem u : True := trivial\n", "Foo")
    assert [d.name for d in result.declared] == ["Foo.t", "u"]
    assert result.namespace == ""
    assert scan("namespace X\nsection\n", "Foo").namespace == "Foo.X"
    assert scan("end Foo.Bar\n", "Foo.Bar").namespace == ""
    assert scan("end Bar\n", "Foo.Bar").namespace == "Foo"
    assert scan("end\nend\nend\n", "Foo").namespace == ""  # Lean's error; never below the root


def test_qualify() -> None:
    assert qualify("", "t") == "t"
    assert qualify("A.B", "C.t") == "A.B.C.t"
    assert qualify("A", "_root_.t") == "t"


LEANDOJO_FILE = HEADER + """namespace Toy

def double (n : Nat) : Nat := 2 * n

/-- The doc comment of the theorem.
  It spans two lines. -/
@[simp]
"""


def test_a_context_becomes_the_header_up_to_the_declarations_own_prefix() -> None:
    code = LEANDOJO_FILE + "theorem double_eq (n : Nat) : double n = n + n := by\n  omega\n"
    split = split_with_context(code, LEANDOJO_FILE)
    assert split.imports == ("Mathlib", "Aesop")
    assert split.header_rest.startswith("open BigOperators")
    assert "def double" in split.header_rest and "namespace Toy" in split.header_rest
    # The doc comment and the attribute belong to the theorem: they end no header command.
    assert split.body.startswith("/-- The doc comment")
    assert "@[simp]\ntheorem double_eq" in split.body
    assert split.body_line_offset == LEANDOJO_FILE[:LEANDOJO_FILE.index("/--")].count("\n")
    assert code.splitlines()[split.body_line_offset] == split.body.splitlines()[0]


def test_a_plain_header_context_splits_as_without_one() -> None:
    code = HEADER + "theorem t : True := trivial\n"
    assert split_with_context(code, HEADER) == split_source(code)
    assert split_with_context(code, HEADER.rstrip("\n")) == split_source(code)


def test_a_file_that_changed_its_context_is_refused() -> None:
    with pytest.raises(ContextError, match="does not begin with the statement's context"):
        split_with_context(HEADER.replace("Nat", "Int") + "theorem t : True := trivial\n",
                           LEANDOJO_FILE)
