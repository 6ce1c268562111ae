"""One REPL command per proof: the reference statement, the proof and the audit in one text.

Every REPL round trip costs a full command on a busy worker, so the statement under a private
name, the proof body and the audit queries go to Lean together, and Lean's answers are told apart
by the line they are reported at. The layout keeps every check of the three-command design:

    line 1..k   theorem <private name> <signature> := sorry     (the reference statement)
    line k+1    #print axioms _root_.<private name>             (a fence, see below)
    then        the proof body, exactly as in the file
    then        one audit query per line (`#print axioms`, `pp.all` `#check`s)

- The reference comes first, so nothing the proof declares can change how the statement reads.
  A namespaced statement's reference is declared `_root_.<private name>`, inside the namespace
  the header (a statement's context) leaves open and, for `theorem C.t`, wrapped in
  `namespace C ... end C`: it reads as the theorem would, and stays at the top level.
- The fence ends with an identifier, which no syntax can extend: whatever the body starts with
  (say an indented `where ...`) cannot continue the reference's `sorry` term. The body then fails
  to parse exactly as it would on its own.
- A body can only reach the audit lines by leaving a comment or string open, or by ending with
  `open ... in` / `set_option ... in`; those files are refused before Lean runs (`open_tail`).
- Messages, sorries and tactic infos are attributed by line: the reference's own `sorry` and its
  warning sit on lines 1..k+1 and are dropped; each audit answer must be the one info message on
  its line. Anything that cannot be attributed makes the check fail or be rejected, never proved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from prover.lean.names import ROOT
from prover.lean.protocol import CommandResponse, Message, Pos, Sorry, TacticInfo
from prover.lean.source import SplitSource, Statement, mask_comments_and_strings

_SENTINEL = "__prover_sentinel__"
_TRAILING_IN = re.compile(r"(?<![\w'.!?])in\s*$")


def audit_lines(targets: tuple[str, ...], reference: str | None) -> list[str]:
    """One query per line so each answer can be told apart by its line number."""
    lines = [f"#print axioms _root_.{t}" for t in targets]
    if reference is not None:
        lines.append(f"set_option pp.all true in #check @_root_.{targets[0]}")
        lines.append(f"set_option pp.all true in #check @_root_.{reference}")
    return lines


def open_tail(body: str) -> str | None:
    """Why the body would reach into the lines after it, or None.

    A block comment or string left open swallows what follows, and a trailing `... in` applies
    to the next command: on its own such a file does not elaborate, appended to it the audit
    queries would be swallowed or altered.
    """
    masked = mask_comments_and_strings(body + "\n" + _SENTINEL)
    if not masked.rstrip().endswith(_SENTINEL):
        return "the file ends inside an unterminated comment or string"
    if _TRAILING_IN.search(masked[: -len(_SENTINEL)]):
        return "the file ends with `open ... in` or `set_option ... in` that applies to nothing"
    return None


@dataclass(frozen=True)
class Layout:
    """Where each part of the fused command sits, in 1-based lines of the command."""

    text: str
    prelude_lines: int  # the reference statement and its fence (0 without a statement)
    body_last: int  # the body's last line
    audit: tuple[str, ...]  # the audit queries, one per line after the body

    @property
    def audit_first(self) -> int:
        return self.body_last + 1

    def audit_index(self, line: int) -> int | None:
        """0-based index of the audit query on `line`, or None."""
        i = line - self.audit_first
        return i if 0 <= i < len(self.audit) else None

    def region(self, pos: Pos | None) -> str:
        """"prelude", "body", "audit" or "after" (past the last audit query, e.g. end of input).

        A message without a position counts as the body's: the strict side.
        """
        if pos is None or pos.line == 0:
            return "body"
        if pos.line <= self.prelude_lines:
            return "prelude"
        if pos.line <= self.body_last:
            return "body"
        return "audit" if self.audit_index(pos.line) is not None else "after"


def reference_declaration(statement: Statement, reference: str, namespace: str = "") -> str:
    """The statement under the reference name, elaborated where the asked theorem would be: in
    the namespace the header leaves open and, for `theorem C.t`, inside namespace C too (as Lean
    does for a dotted declaration name). The reference itself stays at the top level."""
    name = statement.name.rstrip(".")  # `t.{u}` stops at the dot
    own = "" if name.startswith(ROOT) else name.rpartition(".")[0]
    if not own and not namespace:
        return statement.declaration(reference)
    text = statement.declaration(ROOT + reference)
    return f"namespace {own}\n{text}\nend {own}" if own else text


def layout(
    split: SplitSource, statement: Statement | None, reference: str | None,
    targets: tuple[str, ...], namespace: str = "",
) -> Layout:
    prelude = ""
    if statement is not None and reference is not None:
        declaration = reference_declaration(statement, reference, namespace)
        prelude = f"{declaration}\n#print axioms _root_.{reference}\n"
    body = split.body if split.body.endswith("\n") else split.body + "\n"
    audit = audit_lines(targets, reference if statement is not None else None)
    prelude_lines = prelude.count("\n")
    body_last = prelude_lines + body.count("\n")
    # The final line break puts the end of input (where Lean reports an unterminated comment)
    # on a line of its own, past every audit query.
    text = prelude + body + "\n".join(audit) + "\n"
    return Layout(text, prelude_lines, body_last, tuple(audit))


@dataclass(frozen=True)
class Attributed:
    """Lean's answer to a fused command, split by where it came from; body positions are lines
    of the user's file."""

    prelude: tuple[Message, ...]  # the reference statement's messages, lines of the statement
    messages: tuple[Message, ...]  # the body's (and anything past the audit, shown at the end)
    sorries: tuple[Sorry, ...]
    tactics: tuple[TacticInfo, ...]
    audit: dict[int, tuple[Message, ...]]  # by 0-based audit query index


def move(pos: Pos | None, delta: int, clamp: int | None = None) -> Pos | None:
    """`pos` moved by `delta` lines (or put at the start of line `clamp`); unknown stays so."""
    if pos is None or pos.line == 0:
        return pos
    line = pos.line + delta if clamp is None else clamp
    return Pos(line, pos.column if clamp is None else 0)


def attribute(resp: CommandResponse, lay: Layout, body_line_offset: int) -> Attributed:
    delta = body_line_offset - lay.prelude_lines  # command line -> file line, for the body
    last_file_line = lay.body_last + delta

    def to_file(m: Message, clamp: bool) -> Message:
        at = last_file_line if clamp else None
        return replace(m, pos=move(m.pos, delta, at) or m.pos, end_pos=move(m.end_pos, delta, at))

    prelude: list[Message] = []
    body: list[Message] = []
    audit: dict[int, list[Message]] = {}
    for m in resp.messages:
        where = lay.region(m.pos)
        if where == "prelude":
            prelude.append(m)
        elif where == "audit":
            index = lay.audit_index(m.pos.line)
            assert index is not None
            audit.setdefault(index, []).append(m)
        else:
            body.append(to_file(m, clamp=where == "after"))
    # The reference's own `sorry` is expected; any other sorry counts, wherever it sits.
    sorries = tuple(
        replace(s, pos=move(s.pos, delta), end_pos=move(s.end_pos, delta))
        for s in resp.sorries if lay.region(s.pos) != "prelude"
    )
    tactics = tuple(
        replace(t, pos=move(t.pos, delta), end_pos=move(t.end_pos, delta))
        for t in resp.tactics if lay.region(t.pos) == "body"
    )
    return Attributed(
        tuple(prelude), tuple(body), sorries, tactics,
        {i: tuple(ms) for i, ms in audit.items()},
    )
