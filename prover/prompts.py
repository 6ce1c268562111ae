"""DeepSeek-Prover-V1.5's prompt formats, byte for byte.

The released models were trained on, and evaluated with, one exact layout: an instruction line, a
blank line, an opening `lean4` code fence, then the Lean file (header, informal statement as a doc
comment, formal statement) that the model continues. Any drift in a newline or a space costs
pass rate without any error to show for it, so golden tests pin these strings to the layout built
by DeepSeek's own code (deepseek-ai/DeepSeek-Prover-V1.5: `prover/utils.py`,
`prover/algorithms/base.py`, `prover/algorithms/rmax_tree_search.py`, `prover/lean/proof.py`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, get_args

# The default header belongs to the datasets (records without one get it) and is re-exported
# here; prompts build on datasets, never the other way round.
from prover.datasets import DEFAULT_HEADER as DEFAULT_HEADER
from prover.datasets import Problem

PromptMode = Literal["non-cot", "cot"]
PROMPT_MODES: tuple[PromptMode, ...] = get_args(PromptMode)

_INSTRUCTIONS: dict[PromptMode, str] = {
    "non-cot": "Complete the following Lean 4 code:",
    "cot": (
        "Complete the following Lean 4 code with explanatory comments preceding each line of code:"
    ),
}
FENCE = "```"
# DeepSeek's few-shot runs (configs/sampling_few_shot.py) show three examples, drawn from this file.
FEW_SHOT_DATASET = "minif2f_valid_few_shot"
FEW_SHOT_COUNT = 3
# The indentation of a proof's top-level tactics after `:= by`, and DeepSeek's fallback for a
# tactic-state comment when no tactic fixed one.
DEFAULT_INDENT = 2


def _opening(mode: PromptMode) -> str:
    try:
        instruction = _INSTRUCTIONS[mode]
    except KeyError:
        raise ValueError(
            f"unknown prompt mode {mode!r}; expected one of {', '.join(PROMPT_MODES)}"
        ) from None
    return f"{instruction}\n\n{FENCE}lean4\n"


def _lean_code(problem: Problem) -> str:
    return problem.header + problem.informal_prefix + problem.formal_statement


def few_shot_block(example: Problem, mode: PromptMode = "non-cot") -> str:
    """One solved example as DeepSeek shows it: fenced, closed, then two blank lines.

    The model learns from these where a proof ends (the closing fence), which is what lets
    `extract_proof` cut its own output there.
    """
    if example.formal_proof is None:
        raise ValueError(f"few-shot example {example.name!r} has no formal_proof")
    return f"{_opening(mode)}{_lean_code(example)}{example.formal_proof}\n{FENCE}\n\n\n"


def build_prompt(
    problem: Problem, mode: PromptMode = "non-cot", few_shot: Sequence[Problem] = ()
) -> str:
    """Everything the model is given; it ends where the proof must begin (after `:= by\\n`).

    Few-shot examples go first, as DeepSeek prepends them as an extra header; only its
    Base-model runs use them.
    """
    blocks = "".join(few_shot_block(example, mode) for example in few_shot)
    return f"{blocks}{_opening(mode)}{_lean_code(problem)}"


def choose_few_shot(
    pool: Sequence[Problem],
    problem: Problem,
    k: int = FEW_SHOT_COUNT,
    rng: random.Random | None = None,
) -> list[Problem]:
    """k distinct examples at random, never the problem itself (its proof would leak).

    DeepSeek draws afresh for every sample, so callers should too.
    """
    candidates = [example for example in pool if example.name != problem.name]
    if k > len(candidates):
        raise ValueError(f"asked for {k} few-shot examples but only {len(candidates)} are usable")
    return (rng or random.Random()).sample(candidates, k)


def tactic_state_comment(state: str, indent: int = DEFAULT_INDENT) -> str:
    """The Lean comment RMaxTS puts after a verified prefix so the model sees the goals.

    Every line of the state is indented two spaces past the tactic (blank lines between goals
    included, so they carry spaces), and the comment ends with a newline so the model's next
    tactic starts on a fresh line.
    """
    pad = " " * indent
    body = state.replace("\n", f"\n{pad}  ")
    return f"{pad}/- tactic state:\n{pad}  {body}\n{pad}-/\n"


def resume_prompt(
    prompt: str,
    proof_prefix: str,
    tactic_state: str | None = None,
    indent: int = DEFAULT_INDENT,
) -> str:
    """The prompt that continues a proof from a verified prefix (an RMaxTS tree node).

    `proof_prefix` is whole lines of proof after the statement. The tactic-state comment is
    only shown to the model: the candidate proof is `proof_prefix + extract_proof(completion)`,
    without it, as in DeepSeek. `indent` is the column of the outermost tactic that ends on the
    prefix's last line (the search knows it from the REPL's tactic positions); text alone cannot
    tell a closed nested block from an open one.
    """
    if tactic_state is None:
        return prompt + proof_prefix
    if not (prompt + proof_prefix).endswith("\n"):
        raise ValueError("a tactic-state comment must start a line: end proof_prefix with '\\n'")
    return prompt + proof_prefix + tactic_state_comment(tactic_state, indent)


def extract_proof(completion: str) -> str:
    """The model's proof: its output up to the first closing fence, unchanged otherwise.

    Nothing is stripped, because a resumed proof is the prefix plus this text and the offsets
    of the REPL's messages must line up with what the model wrote.
    """
    end = completion.find(FENCE)
    return completion if end < 0 else completion[:end]


def full_code(problem: Problem, proof_body: str) -> str:
    """The Lean file to check: header, formal statement, proof (the doc comment is dropped).

    Trailing spaces and newlines of the proof are removed, as DeepSeek's proof summarizer does
    before verification.
    """
    return problem.header + problem.formal_statement + proof_body.rstrip(" \n")
