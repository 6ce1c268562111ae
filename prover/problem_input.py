"""Turn what a user types (a statement, or a Lean file with a theorem left to prove) into the
`Problem` the search works on, with DeepSeek's layout: header, then `formal_statement` ending in
`:= by` and a line break, so the model continues the proof on the next line."""

from __future__ import annotations

import re

from prover.datasets import Problem
from prover.lean.source import StatementError, mask_comments_and_strings, parse_statement
from prover.prompts import DEFAULT_HEADER

_DECL = re.compile(r"(?:^|(?<=\s))(?:theorem|lemma)\s", re.MULTILINE)
_PROOF_START = re.compile(r":=\s*(by\b)?")


def normalise_statement(text: str) -> str:
    """`theorem ... : T`, `... :=` or `... := by` (any spacing) -> `... := by` + newline."""
    statement = text.strip()
    parse_statement(statement)  # raises StatementError with a clear message
    masked = mask_comments_and_strings(statement)
    statement = statement[: len(masked.rstrip())]
    statement = re.sub(r"\s*:=\s*(by)?$", "", statement)
    return statement + " := by\n"


def problem_from_statement(
    statement: str, header: str | None = None, name: str | None = None,
    informal_prefix: str = "",
) -> Problem:
    formal = normalise_statement(statement)
    theorem = parse_statement(formal)
    head = DEFAULT_HEADER if header is None else header
    if head and not head.endswith("\n"):
        head += "\n"
    return Problem(name=name or theorem.name, split="", header=head,
                   informal_prefix=informal_prefix, formal_statement=formal)


def problem_from_lean_file(text: str, header: str | None = None) -> Problem:
    """The last theorem of a Lean file is the one to prove; whatever proof it has (`sorry`,
    nothing) is dropped, and everything before it becomes the header."""
    masked = mask_comments_and_strings(text)
    starts = [m.start() for m in _DECL.finditer(masked)]
    if not starts:
        raise StatementError("the file has no `theorem` or `lemma` to prove")
    start = starts[-1]
    proof = _PROOF_START.search(masked, start)
    end = proof.end() if proof else len(text.rstrip())
    before = text[:start] if header is None else header
    return problem_from_statement(text[start:end], header=before)
