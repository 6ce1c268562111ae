"""Compiler-feedback repair: sample, then show each failed proof's Lean errors to the model and
ask for a corrected one, for a few rounds.

Chat provers are trained to fix their own proofs: Goedel-Prover-V2-32B goes from 88.0% to 90.4%
on miniF2F-test at pass@32 with two rounds of self-correction, and Kimina-Prover's error-fix
turns beat plain sampling at the same budget. The search draws `samples` first answers; every
failed attempt that Lean checked gets `corrections` new answers, each a conversation holding the
attempt's prompt, its answer and the profile's correction turn (Goedel-Prover-V2's errors marked
in place, Kimina-Prover's goals before the error); that repeats for `rounds` rounds. Every
generation counts against the budget, and a correction starts the moment a slot is free, not
when its round is complete, so the model is never idle while Lean checks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from prover.lean.verdict import Verdict
from prover.model.base import Chat
from search.attempt import Attempt, ProofTask
from search.sampling import SampleTally
from search.types import ProgressCallback, SearchConfig, SearchResult

# Verdicts whose Lean messages say what to fix; a timeout, a crash or a policy rejection does not
# (Goedel-Prover-V2 skips those too).
CORRECTABLE = (Verdict.FAILED, Verdict.INCOMPLETE)


@dataclass(frozen=True)
class _Job:
    round: int
    conversation: Chat | None  # None: a first sample from the profile's prompt


class Repair:
    def __init__(
        self, task: ProofTask, config: SearchConfig, progress: ProgressCallback | None = None
    ) -> None:
        self.task = task
        self.config = config
        self.tally = SampleTally(task, config, progress)
        self.proof_round: int | None = None

    def _corrections(self, job: _Job, attempt: Attempt) -> list[_Job]:
        config = self.config
        if (job.round >= config.rounds or not attempt.checked
                or attempt.result.verdict not in CORRECTABLE
                or isinstance(attempt.prompt, str)):
            return []
        conversation = self.task.profile.correction(
            attempt.prompt, attempt.completion.text, self.task.code(attempt.body),
            attempt.result, job.round + 1,
        )
        if conversation is None:
            return []
        return [_Job(job.round + 1, conversation)] * config.corrections

    def _handle(self, job: _Job, attempt: Attempt) -> bool:
        if attempt.proved:
            self.proof_round = job.round
        return self.tally.record(attempt, round=job.round, rounds=self.config.rounds)

    async def run(self) -> SearchResult:
        started = time.monotonic()
        config = self.config
        pending = deque(_Job(0, None) for _ in range(min(config.samples, config.budget)))
        running: dict[asyncio.Future[Attempt], tuple[int, _Job]] = {}
        issued = 0
        try:
            while True:
                while pending and len(running) < config.concurrency and issued < config.budget:
                    job = pending.popleft()
                    started_job: asyncio.Future[Attempt] = asyncio.ensure_future(self.task.attempt(
                        issued, seed=config.seed, want_steps=False,
                        conversation=job.conversation,
                    ))
                    running[started_job] = (issued, job)
                    issued += 1
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                stop = False
                for future in sorted(done, key=lambda f: running[f][0]):
                    _, job = running.pop(future)
                    attempt = future.result()  # a failed generation fails the search
                    if self._handle(job, attempt):
                        stop = True
                        break
                    pending.extend(self._corrections(job, attempt))
                if stop:
                    break
        finally:
            for future in running:
                future.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        return self.tally.result(started, round=self.proof_round)
