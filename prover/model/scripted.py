"""A generator whose completions are a function of (prompt, seed): for tests, simulations and
benchmarks that must not depend on a model.

It goes through the same `Generator` interface as the real backends, so the search code under
test is the code that runs in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from prover.model.base import Completion, Generator, Prompt, SamplingParams

# (prompt or chat, seed of this sample) -> completion text, or (text, its log-probability)
Script = Callable[[Prompt, int], str | tuple[str, float]]


class ScriptedGenerator(Generator):
    name = "scripted"
    native_chat = True  # a chat prompt reaches the script as the conversation itself

    def __init__(self, script: Script, *, yield_every_call: bool = True) -> None:
        super().__init__()
        self.script = script
        self.prompts: list[Prompt] = []  # every prompt received, in order
        self.params: list[SamplingParams] = []  # the sampling settings of every call, in order
        self.yield_every_call = yield_every_call

    async def _generate(
        self, prompts: Sequence[Prompt], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        if self.yield_every_call:
            await asyncio.sleep(0)  # behave like a real backend: let other tasks run
        self.params.append(params)
        base = params.seed if params.seed is not None else 0
        out: list[list[Completion]] = []
        for prompt in prompts:
            self.prompts.append(prompt)
            row = []
            for i in range(n):
                out_i = self.script(prompt, base + i)
                text, logprob = out_i if isinstance(out_i, tuple) else (out_i, None)
                size = len(prompt) if isinstance(prompt, str) else sum(
                    len(m.content) for m in prompt)
                row.append(Completion(text, tokens=max(1, len(text) // 4),
                                      prompt_tokens=size // 4, logprob=logprob))
            out.append(row)
        return out
