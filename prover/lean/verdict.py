"""Verdicts and the result of one check, as promised in interface.md.

A verdict is computed from what Lean reported, never from the proof text alone: `proved` needs
no error, no sorry, only the standard axioms according to `#print axioms`, and (when a statement
was given) the elaborated type of the theorem equal to that of the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prover.lean.protocol import Message, Pos, Sorry, TacticInfo

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
NATIVE_AXIOMS = frozenset({"Lean.ofReduceBool", "Lean.ofReduceNat", "Lean.trustCompiler"})
SORRY_AXIOMS = frozenset({"sorryAx"})

# Lean ≤ 4.27 quotes with ', later versions with backticks.
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_AXIOMS_LIST = re.compile(r"depends on axioms:\s*\[(?P<list>[^\]]*)\]", re.DOTALL)
_NO_AXIOMS = re.compile(r"does not depend on any axioms")


class Verdict(StrEnum):
    PROVED = "proved"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    SYSTEM_ERROR = "system_error"


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    axioms: tuple[str, ...] = ()
    rejection: str | None = None
    error: str | None = None
    time_s: float = 0.0
    tactics: tuple[TacticInfo, ...] = field(default=(), compare=False)
    cached: bool = False  # the verdict was remembered, not recomputed by Lean (results cache)

    @property
    def proved(self) -> bool:
        return self.verdict is Verdict.PROVED

    def to_json(self) -> dict[str, Any]:
        """The verify object of interface.md."""
        return {
            "verdict": self.verdict.value,
            "messages": [message_json(m) for m in self.messages],
            "sorries": [
                {
                    "line": s.pos.line if s.pos else None,
                    "column": s.pos.column if s.pos else None,
                    "end_line": s.end_pos.line if s.end_pos else None,
                    "end_column": s.end_pos.column if s.end_pos else None,
                    "goal": s.goal,
                }
                for s in self.sorries
            ],
            "axioms": list(self.axioms),
            "rejection": self.rejection,
            "error": self.error,
            "time_s": round(self.time_s, 4),
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CheckResult:
        """The inverse of `to_json` (tactic infos are not part of it)."""

        def pos(line: object, column: object) -> Pos | None:
            return Pos(line, column) if isinstance(line, int) and isinstance(column, int) else None

        return cls(
            Verdict(obj["verdict"]),
            messages=tuple(
                Message(m["severity"], pos(m["line"], m["column"]) or Pos(0, 0),
                        pos(m["end_line"], m["end_column"]), m["text"])
                for m in obj.get("messages", ())
            ),
            sorries=tuple(
                Sorry(None, s["goal"], pos(s["line"], s["column"]),
                      pos(s["end_line"], s["end_column"]))
                for s in obj.get("sorries", ())
            ),
            axioms=tuple(obj.get("axioms", ())),
            rejection=obj.get("rejection"),
            error=obj.get("error"),
            time_s=float(obj.get("time_s", 0.0)),
            cached=bool(obj.get("cached", False)),
        )


def message_json(m: Message) -> dict[str, Any]:
    return {
        "severity": m.severity,
        "line": m.pos.line,
        "column": m.pos.column,
        "end_line": m.end_pos.line if m.end_pos else None,
        "end_column": m.end_pos.column if m.end_pos else None,
        "text": m.data,
    }


def mentions_sorry(messages: tuple[Message, ...]) -> bool:
    return any(m.severity == "warning" and _SORRY_WARNING.search(m.data) for m in messages)


def parse_axioms(text: str) -> tuple[str, ...] | None:
    """The axiom list of a `#print axioms` message, or None if the text is not one."""
    if _NO_AXIOMS.search(text):
        return ()
    m = _AXIOMS_LIST.search(text)
    if m is None:
        return None
    return tuple(sorted(a.strip() for a in m.group("list").replace("\n", " ").split(",")
                        if a.strip()))


def checked_type(text: str) -> str:
    """The type part of a `#check @c` message (`@c : T`), whitespace-normalised.

    Line breaks in Lean's output depend on the width of the name in front, so only the
    sequence of tokens is compared.
    """
    _, sep, rest = text.partition(" : ")
    return " ".join((rest if sep else text).split())


def judge_axioms(axioms: tuple[str, ...], allow_native: bool) -> tuple[Verdict, str | None]:
    """Proved, incomplete (sorry) or rejected, from the axioms a theorem depends on."""
    if SORRY_AXIOMS & set(axioms):
        return Verdict.INCOMPLETE, None
    allowed = STANDARD_AXIOMS | (NATIVE_AXIOMS if allow_native else frozenset())
    extra = sorted(set(axioms) - allowed)
    if extra:
        return Verdict.REJECTED, "depends on non-standard axioms: " + ", ".join(extra)
    return Verdict.PROVED, None
