"""Answer, then prove: the search for problems that ask for an answer (PutnamBench's 346).

Such a problem defines its answer in the header as `abbrev …_solution : T := sorry`, and no proof
alone can prove a theorem about an opaque `sorry`. So the model is first asked for the answer:
the header continued at that `:=`, with the problem's informal statement as the definition's
docstring, as DeepSeek-Prover's prompt shows a theorem's. Each distinct answer that obeys the
submission rule of prover/answers.py (a term, no `sorry`, no new command) replaces the `sorry`,
and the ordinary search runs on that problem with an equal share of the budget, until one
proves. What it proves is a valid submission: the header with the answer, the statement
unchanged, the proof; the checker judges it with the statement elaborated in that header.

Under a chat profile (deepseek-v2 with cot, goedel-v2, kimina-prover) the model is asked with the
profile's own first prompt, which shows the whole file with the answer's `sorry`, at the
profile's sampling settings (its plan comes before the code, so no short cut-off); the answer is
read from the definition in the last ```lean4 block of its reply. A raw-text profile is asked
with the continuation prompt above.

Answer samples count against the budget. Answer searches keep no checkpoint (a checkpoint
belongs to one problem, and each answer makes another), so a killed run starts them afresh.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence

from prover.answers import AnswerError, answer_slot, submitted_answer
from prover.datasets import Problem
from prover.model.base import Generator, Prompt, SamplingParams
from prover.profiles import DEFAULT_PROFILE, Profile, get_profile, last_lean_block
from prover.prompts import FENCE, PromptMode, build_prompt
from search.attempt import ProofTask, Verifier
from search.checkpoint import CheckpointStore
from search.run import check_search, check_tactic_search, search_proof
from search.types import ProgressCallback, SearchConfig, SearchResult

ANSWERS = 4  # distinct answers searched at most
ANSWER_SAMPLES = 8  # samples asked for them
ANSWER_MAX_TOKENS = 256


def answer_prompt(problem: Problem, mode: PromptMode = "non-cot") -> str:
    """The prompt that ends at the answer's `:=`: header, informal statement, the definition."""
    slot = answer_slot(problem.header)
    if slot is None:
        raise ValueError(f"{problem.name} asks for no answer")
    line = problem.header.rfind("\n", 0, slot.start) + 1
    shown = dataclasses.replace(problem, header=problem.header[:line],
                                formal_statement=problem.header[line:slot.start])
    return build_prompt(shown, mode)


def cut_answer(completion: str) -> str:
    """The term the model wrote: up to the closing fence, a blank line, or a line at column 0
    (the next command)."""
    text = completion.split(FENCE, 1)[0]
    lines = text.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.strip() or not line[:1].isspace():
            break
        kept.append(line)
    return "\n".join(kept).strip()


def answer_in_code(problem: Problem, reply: str) -> str:
    """The answer a chat prover wrote into the definition in its reply's last ```lean4 block
    (the whole file, the `sorry` replaced); "" when there is no such definition."""
    slot = answer_slot(problem.header)
    block = last_lean_block(reply)
    if slot is None or block is None:
        return ""
    found = re.search(rf"^(?:noncomputable\s+)?(?:abbrev|def)\s+{re.escape(slot.name)}\b[^\n]*?:=",
                      block, re.MULTILINE)
    return cut_answer(block[found.end():]) if found else ""


def answer_request(problem: Problem, profile: Profile, mode: PromptMode,
                   params: SamplingParams) -> tuple[Prompt, SamplingParams, bool]:
    """The prompt that asks `profile`'s model for the answer, its sampling settings, and
    whether the answer is read from a chat reply's code (else cut from a continuation)."""
    format_ = profile.mode(mode)
    if profile.is_chat(format_):
        return profile.first_prompt(problem, format_), params, True
    short = dataclasses.replace(params, max_tokens=min(params.max_tokens, ANSWER_MAX_TOKENS))
    return answer_prompt(problem, format_), short, False


def _refuse_unusable_search(problem: Problem, generator: Generator, verifier: Verifier,
                            config: SearchConfig, mode: PromptMode, profile: Profile) -> None:
    """The search_proof refusals (a search the profile cannot drive), before answer samples
    are spent rather than after."""
    if config.algorithm == "bfs":
        check_tactic_search(profile, mode, verifier)
        return
    check_search(ProofTask(problem, generator, verifier, mode=mode, profile=profile),
                 config.algorithm)


def with_answer(problem: Problem, term: str) -> Problem:
    slot = answer_slot(problem.header)
    assert slot is not None
    header = problem.header[:slot.start] + term + problem.header[slot.end:]
    return dataclasses.replace(problem, header=header)


def usable_answers(problem: Problem, texts: Sequence[str], *, chat: bool = False) -> list[str]:
    """Distinct answers, in order, that a submission may carry: cut from continuations, or
    (`chat`) read from the code of chat replies."""
    out: list[str] = []
    for text in texts:
        term = answer_in_code(problem, text) if chat else cut_answer(text)
        if not term or term in out:
            continue
        answered = with_answer(problem, term)
        try:
            submitted_answer(problem, answered.header + problem.formal_statement)
        except AnswerError:
            continue
        out.append(term)
    return out[:ANSWERS]


async def search_with_answer(
    problem: Problem,
    generator: Generator,
    verifier: Verifier,
    config: SearchConfig | None = None,
    *,
    params: SamplingParams | None = None,
    mode: PromptMode = "non-cot",
    check_timeout: float | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_store: CheckpointStore | None = None,
    profile: Profile | None = None,
) -> SearchResult:
    """`search_proof`, answering first when the problem asks for an answer; `profile` (None:
    deepseek-v1.5) decides how the answer is asked for, as it decides the proof prompts."""
    config = config or SearchConfig()
    if answer_slot(problem.header) is None:
        return await search_proof(problem, generator, verifier, config, params=params,
                                  mode=mode, check_timeout=check_timeout, progress=progress,
                                  checkpoint_store=checkpoint_store, profile=profile)
    started = time.monotonic()
    profile = profile or get_profile(DEFAULT_PROFILE)
    _refuse_unusable_search(problem, generator, verifier, config, mode, profile)
    params = params or SamplingParams()
    asked = min(ANSWER_SAMPLES, max(1, config.budget // 2))
    prompt, sampling, chat = answer_request(problem, profile, mode, params)
    [completions] = await generator.generate(
        [prompt], asked, dataclasses.replace(sampling, seed=config.seed))
    answers = usable_answers(problem, [c.text for c in completions], chat=chat)
    spent = asked
    left = config.budget - spent
    last: SearchResult | None = None
    for i, term in enumerate(answers):
        share = left // (len(answers) - i)
        if share < 1:
            break
        result = await search_proof(
            with_answer(problem, term), generator, verifier,
            dataclasses.replace(config, budget=share, checkpoint=None),
            params=params, mode=mode, check_timeout=check_timeout, progress=progress,
            profile=profile)
        spent += result.samples
        left = config.budget - spent
        last = dataclasses.replace(result, samples=spent, time_s=time.monotonic() - started)
        if result.proved:
            return last
    if last is not None:
        return last
    return SearchResult(proved=False, proof=None, verdict="failed", samples=spent,
                        tree_size=0, time_s=time.monotonic() - started)
