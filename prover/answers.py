"""PutnamBench's answer problems: a proof must also supply the answer, and the answer is checked.

346 PutnamBench problems (putnambench.jsonl) ask for an answer written as a definition in the
header, `abbrev putnam_…_solution : T := sorry`, that the theorem mentions. A submission supplies
it by replacing that `sorry` with a term, and by nothing else: the file must be the problem's
header with the `sorry` replaced, then the theorem exactly as stated, then its proof. Anything
else (another type for the answer, another definition, a changed statement, a new command
hidden in the answer) is refused before Lean runs, because with the header under the
submitter's control "the theorem as stated" would mean whatever the new header makes it mean.

What Lean then checks is the usual verdict, with the answer inside it: the submitted header
(imports through the answer's definition to the theorem) is the check's trusted context, so the
statement is elaborated under a private name right after it, where it mentions the *submitted*
answer, and compared with the theorem proved. (Without the context the answer's definition
would sit in the proof's part of the file, after the statement's private copy, and the statement
could not mention it.) The answer must be one term: a `sorry`, a command hidden in it (even an
indented one: Lean does not need column 0 to start a command) or an unterminated comment is
refused here; it is then scanned by the same policy as the proof (`native_decide`, `axiom`,
...), and `#print axioms` of the theorem, which reaches the answer's definition, must show only
the standard axioms. A proof that keeps the `sorry` answer therefore ends `incomplete`, never
`proved`, and one that defines the answer again after the statement fails in Lean (it is
already declared).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.fused import open_tail
from prover.lean.source import mask_comments_and_strings

# `abbrev putnam_2008_b5_solution : Set (ℝ → ℝ) := sorry` (a `def` too, and `noncomputable`).
_SLOT = re.compile(
    r"^(?:noncomputable\s+)?(?:abbrev|def)\s+(?P<name>[^\s:]+_solution)\b[^\n]*:=[ \t]*"
    r"(?P<sorry>sorry)[ \t]*$",
    re.MULTILINE,
)
_SORRY = re.compile(r"\b(?:sorry|admit)\b")
# Words that start or modify a command and never occur inside a term; `open`/`set_option` are
# terms only as `open … in t` / `set_option … in t`. Lean starts a command at any column.
_COMMAND = re.compile(
    r"(?<![\w'.!?])(?:(?:theorem|lemma|def|abbrev|instance|axiom|opaque|example|structure|class"
    r"|inductive|mutual|namespace|section|end|universe|variable|attribute|local|scoped|private"
    r"|protected|noncomputable|partial|unsafe|nonrec|export|omit|include|deriving|initialize"
    r"|macro|macro_rules|syntax|notation|elab|elab_rules|infix|infixl|infixr|prefix|postfix"
    r"|declare_syntax_cat)(?![\w'!?])"
    r"|(?:open|set_option)(?![\w'!?])(?![^\n]*\sin(?![\w'!?]))"
    r"|#(?:check|print|reduce|eval|exit|synth|guard_msgs|lint|help|where)\b)|@\[")


class AnswerError(ValueError):
    """A submission does not keep the problem as stated, or its answer is not an answer."""


@dataclass(frozen=True)
class Submission:
    term: str  # the answer, as submitted (surrounding blanks dropped)
    header: str  # the problem's header with the answer in place: the file up to the theorem


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
    return read_submission(problem, code).term


def read_submission(problem: Problem, code: str) -> Submission:
    """The answer of a submission for an answer problem and the header it makes; AnswerError
    says what is wrong."""
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
    command = _COMMAND.search(masked)
    if command is not None:
        raise AnswerError(f"the answer may only be a term: `{command.group(0)}` starts or "
                          "modifies a command, which would change the header the statement "
                          "is read in")
    unterminated = open_tail(term)
    if unterminated is not None:
        why = unterminated.replace("the file", "it")
        raise AnswerError(f"the answer may only be a term: {why}")
    return Submission(term.strip(), code[:end + len(after)])


def answer_check(problem: Problem, code: str, timeout: float | None = None) -> CheckRequest:
    """The check that judges `code` for `problem`: its theorem against the statement, read
    right after the submitted header (the check's context), so the statement can mention the
    header's definitions, the answer among them. For an answer problem the submission's shape
    is validated first (AnswerError)."""
    context: str | None = None
    if code.startswith(problem.header):
        # The header as given: for an answer problem its answer is still `sorry`, which Lean
        # judges `incomplete`.
        context = problem.header
    elif answer_slot(problem.header) is not None:
        context = read_submission(problem, code).header  # it differs by the answer alone
    # Otherwise a plain problem under a header of the submitter's own: the statement is read in
    # that header, as `--statement` does.
    return CheckRequest(code=code, statement=problem.formal_statement, timeout=timeout,
                        context=context)
