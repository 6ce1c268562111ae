"""Prover profiles: how each published prover model is prompted, read and corrected.

A model only does well with the exact format it was trained on. A profile says how to prompt it
(raw text it continues, or a chat with a system prompt), how to read its answer (for chat provers
the last ```lean4 block, the plan or thinking before it dropped), how to ask for a correction
after Lean found errors, its sampling defaults and the Lean version it was trained on.

The texts are facts taken from each project's published code, pinned by golden tests
(tests/test_profiles.py, tests/golden/); the sources are named next to each text below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from prover.datasets import Problem
from prover.lean.protocol import Message, Pos, TacticInfo
from prover.lean.source import mask_comments_and_strings, parse_statement
from prover.lean.verdict import CheckResult
from prover.model.base import Chat, ChatMessage, Prompt, SamplingParams
from prover.prompts import PROMPT_MODES, PromptMode, build_prompt, extract_proof

DEFAULT_PROFILE = "deepseek-v1.5"


class ProfileError(ValueError):
    """An unknown profile, or a profile asked for something it cannot do."""


@dataclass(frozen=True)
class Reading:
    """What a profile read from one answer: the proof body to check after the statement, or
    why there is none (the attempt then fails with that reason, without a Lean check)."""

    body: str | None
    why: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    title: str  # the model family, for help texts and reports
    chat: bool  # chat messages (True) or raw text the model continues
    modes: tuple[PromptMode, ...]
    max_tokens: int
    temperature: float
    top_p: float
    lean_version: str  # the Lean toolchain the model's training data was checked with
    context: int | None = None  # the context length the authors ran the model with
    default_search: str = "rmaxts"

    def sampling(self) -> SamplingParams:
        """The authors' sampling settings, for searches whose caller sets none (the service's
        jobs, the MCP tools): a chat prover cut at V1.5's 2,048 tokens never reaches its code."""
        return SamplingParams(temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens)

    def mode(self, wanted: str | None) -> PromptMode:
        """The prompt format to use: `wanted` when this profile has it, else its only one.

        Goedel-Prover-V2 and Kimina-Prover have a single format (plan or thinking, then code),
        so the CoT/non-CoT switch of the DeepSeek models does not apply to them.
        """
        if wanted in self.modes:
            return wanted
        if len(self.modes) == 1:
            return self.modes[0]
        raise ProfileError(f"profile {self.name} has the prompt formats "
                           f"{', '.join(self.modes)}, not {wanted!r}")

    def is_chat(self, mode: PromptMode) -> bool:
        return self.chat

    def first_prompt(self, problem: Problem, mode: PromptMode,
                     few_shot: Sequence[Problem] = ()) -> Prompt:
        return build_prompt(problem, mode, few_shot)

    def read(self, problem: Problem, text: str, mode: PromptMode) -> Reading:
        return Reading(extract_proof(text))

    def correction(self, history: Chat, answer: str, code: str, result: CheckResult,
                   round_: int) -> Chat | None:
        """The conversation that asks for correction round `round_` (1, 2, ...) of `answer`,
        whose checked Lean file `code` got `result`; None when there is nothing to correct."""
        return None


# --------------------------------------------------------------------------- reading answers

_LEAN_BLOCK = re.compile(r"```lean4\n(.*?)\n```", re.DOTALL)
_LEAN_BLOCK_LOOSE = re.compile(r"```lean4\n(.*?)```", re.DOTALL)
_PROOF_START = re.compile(r":=\s*by\b")


def last_lean_block(text: str) -> str | None:
    """The last ```lean4 block of an answer, as Goedel-Prover-V2's `extrac_code` takes it."""
    for pattern in (_LEAN_BLOCK, _LEAN_BLOCK_LOOSE):
        blocks = pattern.findall(text)
        if blocks:
            return str(blocks[-1])
    return None


def body_of_block(problem: Problem, block: str) -> Reading:
    """The proof of the problem's theorem in a whole Lean file the model wrote.

    The text after the theorem's `:= by` is the proof body; our own header and statement go in
    front of it when it is checked, so the model cannot change what is proved. Declarations the
    model put before the theorem are dropped, as Goedel-Prover-V2's `replace_statement_in_proof`
    drops them.
    """
    masked = mask_comments_and_strings(block)
    try:
        name = parse_statement(problem.formal_statement).name
    except ValueError:
        name = problem.name
    decl = re.search(rf"(?:^|\s)(?:theorem|lemma)\s+{re.escape(name)}(?=[\s(:{{\[⦃])", masked)
    decl = decl or re.search(r"(?:^|\s)theorem\s", masked)
    if decl is None:
        return Reading(None, "the answer's Lean code block has no theorem to take a proof from")
    start = _PROOF_START.search(masked, decl.end())
    if start is None:
        return Reading(None, "the answer's theorem has no `:= by` proof")
    body = block[start.end():]
    if problem.formal_statement.endswith("\n") and body.startswith("\n"):
        body = body[1:]
    return Reading(body)


def read_chat_answer(problem: Problem, text: str) -> Reading:
    """The last ```lean4 block, its proof; a missing block is a failed attempt, not a crash."""
    block = last_lean_block(text)
    if block is None:
        return Reading(None, "the model's answer has no ```lean4 code block "
                             "(cut off by max_tokens, or no code written)")
    return body_of_block(problem, block)


def _lean_file(problem: Problem) -> str:
    return problem.header + problem.informal_prefix + problem.formal_statement


def _upto_by(problem: Problem) -> str:
    """The Lean file cut at the statement's `:= by`, as the authors' `split(":= by")[0]`."""
    return _lean_file(problem).split(":= by")[0]


# --------------------------------------------------------------------------- DeepSeek-V1.5


class DeepSeekV15(Profile):
    """DeepSeek-Prover-V1.5: raw completion (prover/prompts.py, pinned by test_prompts.py)."""


# --------------------------------------------------------------------------- Goedel format

# deepseek-ai/DeepSeek-Prover-V2 README.md (commit 24ec0822) "Quick Start", and
# Goedel-LM/Goedel-Prover-V2 src/utils.py (commit 2e9036e1) `DeepSeekCoTHandler.prover_inference`.
PLAN_INSTRUCTION = (
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
    "proof plan outlining the main proof steps and strategies.\nThe plan should highlight key "
    "ideas, intermediate lemmas, and proof structures that will guide the construction of the "
    "final formal proof."
)
# Goedel-LM/Goedel-Prover-V2 src/utils.py (commit 2e9036e1) `generate_correction_prompt`.
ROUND_FEEDBACK = (
    "The proof (Round {round}) is not correct. Following is the compilation error message, "
    "where we use <error></error> to signal the position of the error.\n\n{errors}\n\n"
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
    "analysis of the error message."
)
MAX_ROUND_ERRORS = 8  # `get_error_str` with error_thres: at most 8 errors, the rest counted
_ROUND_CONTEXT_BEFORE = 4  # lines shown before an error's first line
_ROUND_SPAN_LINES = 6  # lines of a long error shown before "... --[Truncated]-- ..."
_COMPILED_DROPS = ("import", "set_option", "open")  # lines src/compile.py removes before Lean


def _shown_code(code: str, errors: Sequence[Message]) -> tuple[list[str], list[Message]]:
    """The code as Goedel-Prover-V2 compiles it (header lines removed by `handle`), with the
    errors' line numbers moved accordingly; the full code when an error sits on a removed line."""
    lines = code.split("\n")
    kept = [i for i, line in enumerate(lines) if not line.strip().startswith(_COMPILED_DROPS)]
    new_index = {old: new for new, old in enumerate(kept)}
    moved: list[Message] = []
    for e in errors:
        ends = [e.pos.line - 1] + ([e.end_pos.line - 1] if e.end_pos else [])
        if any(line not in new_index for line in ends):
            return lines, list(errors)
        start = Pos(new_index[e.pos.line - 1] + 1, e.pos.column)
        end = Pos(new_index[e.end_pos.line - 1] + 1, e.end_pos.column) if e.end_pos else None
        moved.append(Message(e.severity, start, end, e.data))
    return [lines[i] for i in kept], moved


def round_errors(code: str, messages: Sequence[Message]) -> str:
    """Lean's errors in Goedel-Prover-V2's correction format (`get_error_str`, error_thres on):
    each error's code with `<error>`/`</error>` at its start and end, four lines before it, one
    after, and "Error Message:"; at most eight errors."""
    errors = [m for m in messages if m.is_error]
    lines, errors = _shown_code(code, errors)
    out = ""
    for i, error in enumerate(errors[:MAX_ROUND_ERRORS]):
        start_line, start_col = error.pos.line - 1, error.pos.column
        if error.end_pos is None:
            end_line, end_col = start_line, len(lines[start_line])
        else:
            end_line, end_col = error.end_pos.line - 1, error.end_pos.column
        out += f"\nError {i + 1}:\n"
        out += "\nCorresponding Code:\n```lean4\n"
        shown = ""
        for back in range(-_ROUND_CONTEXT_BEFORE, 0):
            if start_line + back >= 0:
                shown += f"{lines[start_line + back]}\n"
        first = lines[start_line]
        if start_line != end_line:
            shown += first[:start_col] + "<error>" + first[start_col:] + "\n"
            j = start_line
            for j in range(start_line + 1, min(end_line, start_line + _ROUND_SPAN_LINES)):
                shown += f"{lines[j]}\n"
            if end_line > start_line + _ROUND_SPAN_LINES:
                spaces = len(lines[j]) - len(lines[j].lstrip(" "))
                shown += "\n" + " " * spaces + "... --[Truncated]-- ...\n"
            last = lines[end_line]
            shown += last[:end_col] + "</error>" + last[end_col:] + "\n"
        else:
            shown += (first[:start_col] + "<error>" + first[start_col:end_col] + "</error>"
                      + first[end_col:] + "\n")
        if end_line + 1 < len(lines):
            shown += f"{lines[end_line + 1]}\n"
        out += shown
        out += "\n```\n"
        out += f"\nError Message: {error.data}\n"
    if len(errors) > MAX_ROUND_ERRORS:
        out += f"\n... [Omitted {len(errors) - MAX_ROUND_ERRORS} more errors] ...\n"
    return out


class GoedelFormat(Profile):
    """DeepSeek-Prover-V2 and Goedel-Prover-V2: one user turn with the statement ending in
    `sorry` and the proof-plan instruction; corrections quote Lean's errors in place."""

    def is_chat(self, mode: PromptMode) -> bool:
        return mode == "cot"

    def first_prompt(self, problem: Problem, mode: PromptMode,
                     few_shot: Sequence[Problem] = ()) -> Prompt:
        if few_shot:
            raise ProfileError(f"profile {self.name} takes no few-shot examples")
        if mode == "non-cot":
            # Goedel-Prover-V2 src/utils.py `DeepSeekNonCoTHandler.prover_inference`: raw text
            # ending at `:= by`, which the model continues.
            return f"Complete the following Lean 4 code:\n\n```lean4\n{_upto_by(problem)}:= by"
        return (ChatMessage("user", self.user_text(problem)),)

    def user_text(self, problem: Problem) -> str:
        statement = _upto_by(problem) + ":= by sorry"
        return f"Complete the following Lean 4 code:\n\n```lean4\n{statement}```\n\n" \
            + PLAN_INSTRUCTION

    def read(self, problem: Problem, text: str, mode: PromptMode) -> Reading:
        if mode == "non-cot":
            return Reading(extract_proof(text))
        return read_chat_answer(problem, text)

    def correction(self, history: Chat, answer: str, code: str, result: CheckResult,
                   round_: int) -> Chat | None:
        feedback = ROUND_FEEDBACK.format(round=round_ - 1,
                                         errors=round_errors(code, result.messages))
        return (*history, ChatMessage("assistant", answer), ChatMessage("user", feedback))


class DeepSeekV2(GoedelFormat):
    """DeepSeek-Prover-V2's README prompt: the Lean file ending `:= by\\n  sorry`, a newline
    before the closing fence (Goedel-Prover-V2's copy of it has none)."""

    def user_text(self, problem: Problem) -> str:
        statement = (_lean_file(problem).rstrip("\n") + "\n  sorry").strip()
        return f"Complete the following Lean 4 code:\n\n```lean4\n{statement}\n```\n\n" \
            + PLAN_INSTRUCTION


# --------------------------------------------------------------------------- Kimina-Prover

# MoonshotAI/Kimina-Prover-Preview kimina_prover_demo/error_fix.py (commit d31a49e4): the system
# prompt and first user turn of Kimina-Prover (the release with error fixing).
KIMINA_SYSTEM = ("You are an expert programmer and mathematician who helps formalizing "
                 "mathematical problems in Lean 4.")
KIMINA_INSTRUCTION = "Think about and solve the following problems step by step in Lean 4."
MAX_FIX_ERRORS = 3  # kimina_prover_demo/utils.py `filter_error_messages`


def _after_imports(code: str) -> tuple[int, list[str]]:
    """(number of leading `import` lines, the lines after them): `split_proof_header`."""
    lines = code.strip().split("\n")
    count = 0
    for line in lines:
        if not line.startswith("import"):
            break
        count += 1
    return count, lines[count:]


def _goals_before(error: Message, tactics: Sequence[TacticInfo]) -> str | None:
    """The goals of the tactic inside the error's range closest to it (`get_error_node`)."""
    if error.end_pos is None:
        return None
    start, end = (error.pos.line, error.pos.column), (error.end_pos.line, error.end_pos.column)
    best: tuple[int, str] | None = None
    for t in tactics:
        if t.pos is None or t.end_pos is None:
            continue
        t_start, t_end = (t.pos.line, t.pos.column), (t.end_pos.line, t.end_pos.column)
        if t_start >= start and end >= t_end:
            distance = (10 * abs(t_start[0] - start[0]) + abs(t_start[1] - start[1])
                        + 10 * abs(t_end[0] - end[0]) + abs(t_end[1] - end[1]))
            if best is None or distance < best[0]:
                best = (distance, t.goals)
    return best[1] if best and best[1] else None


def fix_turn(code: str, result: CheckResult) -> str:
    """Kimina-Prover's error-fix user turn (`create_tool_message`): per error, the goals before
    it, Lean's message, and the code around it with the error line marked `>`.

    One difference: the demo numbers lines after the leading imports but indexes them with the
    whole file's line numbers, which marks a line below the error; here the marked line is the
    one Lean reported.
    """
    errors = [m for m in result.messages if m.is_error][:MAX_FIX_ERRORS]
    skipped, lines = _after_imports(code)
    out = ""
    for i, error in enumerate(errors, 1):
        out += f"# Error {i}:\n"
        goals = _goals_before(error, result.tactics)
        if goals:
            out += f"Goals state before error position: \n{goals}\n\n"
        out += f"Error message: \n{error.data.strip()}\n\n"
        line = error.pos.line - 1 - skipped
        snippet = "```lean4\n"
        for ln in range(max(0, line - 2), min(len(lines), line + 3)):
            text = lines[ln].replace("count_heartbeats in", "")
            snippet += f"{ln + 1:03d}{' >' if ln == line else '  '}| {text}\n"
        out += f"Lean 4 code snippet with error:\n{snippet}```\n"
    if not out:
        problem = (result.error or result.rejection or "").strip()
        if problem:
            out = f"# System Error:\nError message: \n{problem}\n\n"
    return out


class KiminaProver(Profile):
    def first_prompt(self, problem: Problem, mode: PromptMode,
                     few_shot: Sequence[Problem] = ()) -> Prompt:
        if few_shot:
            raise ProfileError(f"profile {self.name} takes no few-shot examples")
        statement = _upto_by(problem) + ":= by sorry"
        return (ChatMessage("system", KIMINA_SYSTEM),
                ChatMessage("user", f"{KIMINA_INSTRUCTION}\n\n{statement}"))

    def read(self, problem: Problem, text: str, mode: PromptMode) -> Reading:
        return read_chat_answer(problem, text)

    def correction(self, history: Chat, answer: str, code: str, result: CheckResult,
                   round_: int) -> Chat | None:
        turn = fix_turn(code, result)
        if not turn:
            return None
        return (*history, ChatMessage("assistant", answer), ChatMessage("user", turn))


# --------------------------------------------------------------------------- the registry

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        DeepSeekV15(
            name="deepseek-v1.5", title="DeepSeek-Prover-V1.5", chat=False,
            modes=PROMPT_MODES, max_tokens=2048, temperature=1.0, top_p=0.95,
            lean_version="v4.9.0-rc1", context=4096, default_search="rmaxts",
        ),
        # 8,192 new tokens as in the README's example; CoT answers average 4.5-6.8k tokens.
        DeepSeekV2(
            name="deepseek-v2", title="DeepSeek-Prover-V2", chat=True,
            modes=("non-cot", "cot"), max_tokens=8192, temperature=1.0, top_p=0.95,
            lean_version="v4.9.0", context=32768, default_search="sampling",
        ),
        # scripts/pipeline.sh: temperature 1.0, MAX_MODEL_LEN 40960 (prompt and answer, with
        # two correction rounds); src/inference.py: top_p 0.95. One answer: 32K (README).
        GoedelFormat(
            name="goedel-v2", title="Goedel-Prover-V2", chat=True, modes=("cot",),
            max_tokens=32768, temperature=1.0, top_p=0.95, lean_version="v4.9.0-rc1",
            context=40960, default_search="repair",
        ),
        # error_fix.py: temperature 0.8, max_tokens 16000, no top_p (1.0).
        KiminaProver(
            name="kimina-prover", title="Kimina-Prover", chat=True, modes=("cot",),
            max_tokens=16000, temperature=0.8, top_p=1.0, lean_version="v4.15.0",
            context=32768, default_search="repair",
        ),
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown prover profile {name!r}; the known ones are "
                           f"{', '.join(PROFILE_NAMES)}") from None
