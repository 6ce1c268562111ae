"""One proof attempt: prompt, generate, check, and (for the tree) read off its tactic steps.

Both search algorithms are loops over attempts; everything they share with the model and the
verifier lives here, so the loops themselves are pure bookkeeping and can be tested with
scripted backends.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.goals import SORRY_BODY, sorry_check
from prover.lean.verdict import CheckResult, Verdict
from prover.model.base import Chat, Completion, Generator, Prompt, SamplingParams
from prover.profiles import DEFAULT_PROFILE, Profile, get_profile
from prover.prompts import PromptMode, full_code, resume_prompt
from search.segments import NO_GOALS, LineIndex, Step, probe_indent, steps, verified_prefix


class Verifier(Protocol):
    """What the search needs from the Lean side; `LeanPool` is one."""

    async def check(self, request: CheckRequest) -> CheckResult: ...


class SearchSetupError(RuntimeError):
    """The problem cannot be searched at all (its statement does not elaborate, ...)."""


@dataclass(frozen=True)
class Attempt:
    index: int
    body: str  # the proof after the statement: resumed prefix + the model's text
    result: CheckResult
    steps: tuple[Step, ...]
    completion: Completion
    prompt: Prompt = ""  # what the model was given (a chat: the conversation so far)
    checked: bool = True  # False when the answer held no proof, so Lean was not asked

    @property
    def proved(self) -> bool:
        return self.result.verdict is Verdict.PROVED


def sample_seed(seed: int, index: int) -> int:
    """A per-sample generation seed: independent of which job slot or order ran the sample."""
    return (seed * 1_000_003 + index * 7_919 + 17) % (2**31 - 1)


class ProofTask:
    """A problem bound to a prover profile and prompt format, a generator and a verifier."""

    def __init__(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier,
        *,
        params: SamplingParams | None = None,
        mode: PromptMode = "non-cot",
        few_shot: Sequence[Problem] = (),
        tactic_state_comment: bool = True,
        probe: bool = True,
        check_timeout: float | None = None,
        probe_cache: int = 4096,
        profile: Profile | None = None,
    ) -> None:
        self.problem = problem
        self.generator = generator
        self.verifier = verifier
        self.params = params or SamplingParams()
        self.profile = profile or get_profile(DEFAULT_PROFILE)
        self.mode = self.profile.mode(mode)
        self.chat = self.profile.is_chat(self.mode)
        self.prompt: Prompt = self.profile.first_prompt(problem, self.mode, few_shot)
        self.tactic_state_comment = tactic_state_comment
        self.probe = probe
        self.check_timeout = check_timeout
        self.body_start = len(problem.header + problem.formal_statement)  # as full_code lays it out
        self._probes: OrderedDict[str, asyncio.Future[tuple[Step, ...]]] = OrderedDict()
        self._probe_cache = probe_cache
        self.checks = 0
        self.probes = 0

    def code(self, body: str) -> str:
        return full_code(self.problem, body)

    def prompt_for(self, prefix: str, state: str | None, indent: int) -> Prompt:
        if not prefix:
            return self.prompt  # the root: DeepSeek shows no state comment there either
        if not isinstance(self.prompt, str):
            raise ValueError(f"profile {self.profile.name} chats: a proof cannot be resumed "
                             "from a prefix")
        shown = state if self.tactic_state_comment and state else None
        return resume_prompt(self.prompt, prefix, shown, indent)

    async def _check(self, body: str, *, statement: bool, all_tactics: bool) -> CheckResult:
        self.checks += 1
        return await self.verifier.check(
            CheckRequest(
                code=self.code(body),
                statement=self.problem.formal_statement if statement else None,
                # The header is where the statement lives (a LeanDojo theorem's namespace).
                context=self.problem.header if statement else None,
                timeout=self.check_timeout,
                all_tactics=all_tactics,
            )
        )

    async def root_state(self) -> str:
        """The statement's goal, from checking `sorry` as its proof (as DeepSeek does), in the
        environment of this search's verifier: the dataset's `goal` field is not used (the
        newer benchmarks leave it empty, and another Lean prints goals differently).

        This is also the earliest place a broken statement shows up, so it fails the search
        with Lean's own message instead of burning the sample budget.
        """
        self.checks += 1  # cached per verifier: every run of an evaluation shares one check
        result = await sorry_check(self.verifier, self.code(SORRY_BODY), self.check_timeout)
        if result.verdict in (Verdict.TIMEOUT, Verdict.SYSTEM_ERROR):
            raise SearchSetupError(
                f"checking the statement of {self.problem.name} with `sorry` ended in "
                f"{result.verdict.value}: {result.error or 'no detail'}"
            )
        errors = [m.data for m in result.messages if m.is_error]
        if errors or not result.sorries:
            raise SearchSetupError(
                f"the statement of {self.problem.name} does not elaborate with `sorry` as its "
                f"proof: {errors[0] if errors else result.rejection or 'no goal reported'}"
            )
        return result.sorries[-1].goal.strip()

    async def attempt(
        self, index: int, prefix: str = "", state: str | None = None, indent: int = 2,
        seed: int = 0, want_steps: bool = True, conversation: Chat | None = None,
    ) -> Attempt:
        """Generate from `prefix` (a tree node's code), or answer `conversation` (a correction
        round of a chat prover), check, and segment the result."""
        params = SamplingParams(
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            max_tokens=self.params.max_tokens,
            seed=sample_seed(seed, index),
            stop=self.params.stop,
        )
        prompt = conversation or self.prompt_for(prefix, state, indent)
        [[completion]] = await self.generator.generate([prompt], 1, params)
        reading = self.profile.read(self.problem, completion.text, self.mode)
        if reading.body is None:  # nothing Lean could check: a failed attempt that says why
            why = reading.why or "no proof in the answer"
            if completion.finish_reason == "length":
                why += f"; the answer hit max_tokens ({params.max_tokens})"
            return Attempt(index, prefix, CheckResult(Verdict.FAILED, error=why), (), completion,
                           prompt, checked=False)
        body = prefix + reading.body
        # A chat prover's correction round shows the goals at an error: ask for tactic info.
        result = await self._check(body, statement=True,
                                   all_tactics=not self.probe or self.chat)
        found: tuple[Step, ...] = ()
        if want_steps and not result.proved:
            found = await self.steps_of(body, result)
        return Attempt(index, body, result, found, completion, prompt)

    async def steps_of(self, body: str, result: CheckResult) -> tuple[Step, ...]:
        """The tactic steps of an attempt that did not prove the theorem."""
        code = self.code(body)
        prefix = verified_prefix(code, self.body_start, result)
        if prefix is None or not prefix.strip():
            return ()
        if not self.probe:
            cut = self.body_start + len(prefix)
            return tuple(steps(code, self.body_start, cut, result.tactics, None))
        # Concurrent attempts often stop at the same prefix (a node's code plus a failing
        # line): they share one probe instead of each paying a Lean check.
        probe = self._probes.get(prefix)
        if probe is None or (probe.done() and (probe.cancelled() or probe.exception())):
            next_line = body[len(prefix):].split("\n", 1)[0]
            probe = asyncio.ensure_future(self._probe(prefix, next_line))
            self._probes[prefix] = probe
            if len(self._probes) > self._probe_cache:
                self._probes.popitem(last=False)  # its waiters still hold it
        else:
            self._probes.move_to_end(prefix)
        return await asyncio.shield(probe)

    def close(self) -> None:
        """Cancel probes nobody waits for any more (the search ended)."""
        for probe in self._probes.values():
            if not probe.done():
                probe.cancel()

    async def _probe(self, prefix: str, next_line: str) -> tuple[Step, ...]:
        """Check `prefix` + `sorry`: the goals at every line of the prefix and at its end."""
        self.probes += 1
        indent = probe_indent(prefix, next_line)
        result = await self._check(
            prefix + " " * indent + "sorry", statement=False, all_tactics=True
        )
        if result.verdict in (Verdict.TIMEOUT, Verdict.SYSTEM_ERROR, Verdict.REJECTED):
            return ()
        code = self.code(prefix + " " * indent + "sorry")
        cut = self.body_start + len(prefix)
        final: str | None = None
        index = LineIndex(code)
        for s in result.sorries:
            if index.offset(s.pos) == cut + indent:
                final = s.goal.strip() or NO_GOALS
        return tuple(steps(code, self.body_start, cut, result.tactics, final))
