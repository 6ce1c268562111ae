"""Whole-proof sampling: draw complete proofs from the base prompt until one checks.

The baseline of the paper (pass@N). Up to K samples are in flight; the first `proved` result
ends the search and cancels the rest, and `samples` counts those handled up to and including it.
"""

from __future__ import annotations

import time

from search.attempt import Attempt, ProofTask
from search.loop import run_slots
from search.types import ProgressCallback, SearchConfig, SearchProgress, SearchResult


class SampleTally:
    """The account a whole-proof search keeps (samples handled, the last attempt, the proof),
    from which its progress events and its result are made: sampling and repair keep it alike."""

    def __init__(
        self, task: ProofTask, config: SearchConfig, progress: ProgressCallback | None
    ) -> None:
        self.task = task
        self.config = config
        self.progress = progress
        self.samples = 0
        self.proof: Attempt | None = None
        self.last: Attempt | None = None

    def record(self, attempt: Attempt, *, round: int | None = None,
               rounds: int | None = None) -> bool:
        """Count a handled attempt and report it; True when it proved (the search stops)."""
        self.samples += 1
        self.last = attempt
        if attempt.proved:
            self.proof = attempt
        if self.progress is not None:
            self.progress(SearchProgress(self.samples, self.config.budget, 0, 0, attempt.proved,
                                         verdict=attempt.result.verdict.value, round=round,
                                         rounds=rounds))
        return attempt.proved

    def result(self, started: float, *, round: int | None = None) -> SearchResult:
        """The search's result: the proof's, or the last attempt's verdict when none proved."""
        best = self.proof or self.last
        return SearchResult(
            proved=self.proof is not None,
            proof=self.task.code(self.proof.body) if self.proof else None,
            verdict=best.result.verdict.value if best else "failed",
            samples=self.samples,
            tree_size=0,
            time_s=time.monotonic() - started,
            check=best.result if best else None,
            round=round,
        )


class WholeProofSampling:
    def __init__(
        self, task: ProofTask, config: SearchConfig, progress: ProgressCallback | None = None
    ) -> None:
        self.task = task
        self.config = config
        self.tally = SampleTally(task, config, progress)

    async def _sample(self, index: int) -> Attempt:
        return await self.task.attempt(index, seed=self.config.seed, want_steps=False)

    def _handle(self, index: int, attempt: Attempt) -> bool:
        return self.tally.record(attempt)

    async def run(self) -> SearchResult:
        started = time.monotonic()
        await run_slots(
            self._sample,
            self._handle,
            first=0,
            budget=self.config.budget,
            concurrency=self.config.concurrency,
            ordered=self.config.ordered,
        )
        return self.tally.result(started)
