"""Truncate-and-resume: cut an attempt at its first Lean error and split the verified part into
tactic steps, each with the goals that hold after it.

RMaxTS grows its tree from these steps: a step's goals are the edge label, its proof prefix is
the code a later generation resumes from. DeepSeek's code relied on a patched REPL that reports
the state *after* each tactic; the official REPL (`allTactics`) reports the goals *before* each
tactic, so here the state after line i is read as the state before the next line that starts a
tactic. The one state this cannot give, the state after the last verified line, comes from a
cheap second check of the verified prefix followed by `sorry` (the "probe"): Lean reports the
goal of that `sorry`. The probe also matters because Lean 4.9 drops the info trees of a tactic
block that failed, so the first check's tactic list cannot be trusted past an error.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from prover.lean.protocol import Message, Pos, Sorry, TacticInfo
from prover.lean.verdict import CheckResult

NO_GOALS = "no goals"


@dataclass(frozen=True)
class Step:
    """The proof body up to a line boundary, and the goals Lean has there."""

    prefix: str  # proof text after the statement; empty or ending with a line break
    state: str  # the goals at the end of `prefix` ("no goals" when the proof is finished)
    indent: int  # indentation of the line that would come next (for the tactic-state comment)


class LineIndex:
    """Maps Lean's (line, column) positions to offsets in a text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def offset(self, pos: Pos | None) -> int | None:
        if pos is None or pos.line < 1 or pos.line > len(self.starts):
            return None
        start = self.starts[pos.line - 1]
        end = self.starts[pos.line] - 1 if pos.line < len(self.starts) else len(self.text)
        return min(start + max(pos.column, 0), end)

    def line_start(self, offset: int) -> int:
        return self.starts[bisect.bisect_right(self.starts, offset) - 1]


def _is_unsolved_goals(m: Message) -> bool:
    # Reported at `by` when every tactic ran but goals remain: nothing in the body failed.
    return m.data.lstrip().startswith("unsolved goals")


def first_failure(
    code: str, body_start: int, messages: Sequence[Message], sorries: Sequence[Sorry]
) -> int | None:
    """Offset of the first error or `sorry` inside the proof body, or None when there is none."""
    index = LineIndex(code)
    found: int | None = None
    candidates: list[Pos | None] = [m.pos for m in messages if m.is_error and not
                                    _is_unsolved_goals(m)]
    candidates += [s.pos for s in sorries]
    for pos in candidates:
        off = index.offset(pos)
        if off is not None and off >= body_start and (found is None or off < found):
            found = off
    return found


def verified_prefix(code: str, body_start: int, result: CheckResult) -> str | None:
    """The proof body up to the start of the line holding the first failure.

    None when the check says nothing about the body (timeout, crash): no tree update then.
    """
    if result.verdict.value in ("timeout", "system_error", "rejected"):
        return None
    body = code[body_start:]
    failure = first_failure(code, body_start, result.messages, result.sorries)
    if failure is None:
        return body.rstrip(" \n") + "\n" if body.strip() else ""
    cut = LineIndex(code).line_start(failure)
    return code[body_start:max(cut, body_start)]


def indent_of_line(text: str, offset: int) -> int:
    """Indentation of the line starting at `offset` (or of the last line when at the end)."""
    end = text.find("\n", offset)
    line = text[offset:] if end < 0 else text[offset:end]
    return len(line) - len(line.lstrip(" "))


def probe_indent(prefix: str, next_line: str | None) -> int:
    """Where a `sorry` after `prefix` must go: the failing line's indentation when known,
    else that of the prefix's last tactic line (a finished block continues at its level)."""
    if next_line is not None and next_line.strip():
        return len(next_line) - len(next_line.lstrip(" "))
    for line in reversed(prefix.splitlines()):
        if line.strip():
            return len(line) - len(line.lstrip(" "))
    return 2


def steps(
    code: str,
    body_start: int,
    cut: int,
    tactics: Sequence[TacticInfo],
    final_state: str | None,
    root_state: str | None = None,
) -> list[Step]:
    """The steps of `code[body_start:cut]`, a prefix that Lean accepted.

    The state before each line that starts a tactic is the goals of the first tactic on it;
    the state at `cut` is `final_state` (from the probe, or "no goals" for a finished proof).
    Lines that leave the goals unchanged give no step, as in DeepSeek's tree: an edge is a
    change of tactic state.
    """
    index = LineIndex(code)
    first_on_line: dict[int, tuple[int, str]] = {}
    for t in tactics:
        off = index.offset(t.pos)
        if off is None or off < body_start or off >= cut:
            continue
        start = index.line_start(off)
        if start < body_start:
            continue
        known = first_on_line.get(start)
        if known is None or off < known[0]:
            first_on_line[start] = (off, t.goals.strip())
    boundaries = sorted(first_on_line)
    out: list[Step] = []
    previous = root_state
    if boundaries and previous is None:
        previous = first_on_line[boundaries[0]][1]
    for start in boundaries:
        state = first_on_line[start][1]
        if start > body_start and state != previous:
            out.append(Step(code[body_start:start], state, indent_of_line(code, start)))
        previous = state
    if final_state is not None and cut > body_start:
        state = final_state.strip() or NO_GOALS
        if state != previous:
            out.append(Step(code[body_start:cut], state, indent_of_line(code, cut)
                            if cut < len(code) else probe_indent(code[body_start:cut], None)))
    return [s for s in out if s.prefix.strip()]
