"""PutnamBench's answer problems: a proof must also supply the answer, and the answer is checked.

346 PutnamBench problems (putnambench.jsonl) ask for an answer written as a definition in the
header, `abbrev putnam_…_solution : T := sorry`, that the theorem mentions. A submission supplies
it by replacing that `sorry` with a term, and by nothing else: the file must be the problem's
header with the `sorry` replaced, then the theorem exactly as stated, then its proof. Anything
else (another type for the answer, another definition, a changed statement, a new command
hidden in the answer) is refused before Lean runs, because with the header under the
submitter's control "the theorem as stated" would mean whatever the new header makes it mean.

What Lean then checks is the usual verdict, with the answer inside it: the statement is
elaborated under a private name in the submitted header, so it mentions the *submitted* answer,
and compared with the theorem proved; the answer is scanned by the same policy as the proof
(no `sorry`, `native_decide`, `axiom`, ...), and `#print axioms` of the theorem, which reaches
the answer's definition, must show only the standard axioms. A proof that keeps the `sorry`
answer therefore ends `incomplete`, never `proved`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.source import mask_comments_and_strings

# `abbrev putnam_2008_b5_solution : Set (ℝ → ℝ) := sorry` (a `def` too, and `noncomputable`).
_SLOT = re.compile(
    r"^(?:noncomputable\s+)?(?:abbrev|def)\s+(?P<name>[^\s:]+_solution)\b[^\n]*:=[ \t]*"
    r"(?P<sorry>sorry)[ \t]*$",
    re.MULTILINE,
)
_SORRY = re.compile(r"\b(?:sorry|admit)\b")


class AnswerError(ValueError):
    """A submission does not keep the problem as stated, or its answer is not an answer."""


@dataclass(frozen=True)
class AnswerSlot:
    name: str  # the answer's definition, e.g. putnam_1962_a2_solution
    start: int  # where its `sorry` is in the header
    end: int


def answer_slot(header: str) -> AnswerSlot | None:
    """The answer definition whose `sorry` a submission must replace, or None."""
    masked = mask_comments_and_strings(header)
    found = _SLOT.search(masked)
    if found is None:
        return None
    return AnswerSlot(found.group("name"), found.start("sorry"), found.end("sorry"))


def submitted_answer(problem: Problem, code: str) -> str:
    """The answer term of a submission for an answer problem; AnswerError says what is wrong."""
    slot = answer_slot(problem.header)
    if slot is None:
        raise AnswerError(f"{problem.name} asks for no answer")
    before, after = problem.header[: slot.start], problem.header[slot.end:]
    if not code.startswith(before):
        raise AnswerError(f"the file must begin with the problem's header up to `{slot.name} :=`"
                          " unchanged")
    tails = [after + problem.informal_prefix + problem.formal_statement,
             after + problem.formal_statement]
    found = [(i, t) for t in tails if (i := code.find(t, len(before))) >= 0]
    if not found:
        raise AnswerError("the rest of the header and the theorem must follow the answer "
                          "unchanged (the statement exactly as given)")
    end = min(i for i, _ in found)
    term = code[len(before):end]
    masked = mask_comments_and_strings(term)
    if not masked.strip():
        raise AnswerError(f"no answer: the `sorry` of `{slot.name}` must be replaced by a term")
    if _SORRY.search(masked):
        raise AnswerError(f"the answer `{slot.name}` uses sorry")
    later = masked.split("\n")[1:]
    if any(line.strip() and not line[:1].isspace() for line in later):
        raise AnswerError("the answer may only be a term: a line of it starts a new command "
                          "at column 0 (indent continuation lines)")
    return term.strip()


def answer_check(problem: Problem, code: str, timeout: float | None = None) -> CheckRequest:
    """The check that judges `code` for `problem`: its theorem against the statement, in the
    submitted header. For an answer problem the submission's shape is validated first
    (AnswerError)."""
    # The header left as it is (answer still `sorry`) is an ordinary check, which Lean judges
    # `incomplete`; a header that differs must differ by the answer alone.
    if answer_slot(problem.header) is not None and not code.startswith(problem.header):
        submitted_answer(problem, code)
    return CheckRequest(code=code, statement=problem.formal_statement, timeout=timeout)
