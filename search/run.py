"""The one entry point the CLI, the service and the evaluator call to search for a proof."""

from __future__ import annotations

from collections.abc import Sequence

from prover.datasets import Problem
from prover.lean import LeanPool
from prover.model.base import Generator, SamplingParams
from prover.prompts import PromptMode
from search.attempt import ProofTask, SearchSetupError, Verifier
from search.bfs import BestFirstSearch
from search.checkpoint import CheckpointStore
from search.rmaxts import RMaxTS
from search.sampling import WholeProofSampling
from search.types import ProgressCallback, SearchConfig, SearchResult


async def search_proof(
    problem: Problem,
    generator: Generator,
    verifier: Verifier,
    config: SearchConfig | None = None,
    *,
    params: SamplingParams | None = None,
    mode: PromptMode = "non-cot",
    few_shot: Sequence[Problem] = (),
    check_timeout: float | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_store: CheckpointStore | None = None,
) -> SearchResult:
    """Search with the configured algorithm; RMaxTS keeps its tree in `checkpoint_store` (or
    in `config.checkpoint`, a file) and resumes from it. Best-first search (`bfs`) needs a
    `LeanPool` as its verifier (it runs tactics on the pool's REPL) and starts afresh each
    time; `check_timeout` is then its per-tactic timeout."""
    config = config or SearchConfig()
    if config.algorithm == "bfs":
        if not isinstance(verifier, LeanPool):
            raise SearchSetupError("--search bfs applies tactics on a Lean pool's REPL "
                                   "(tactic mode); this verifier has none")
        return await BestFirstSearch(problem, generator, verifier, config, progress,
                                     params=params, tactic_timeout=check_timeout).run()
    task = ProofTask(
        problem,
        generator,
        verifier,
        params=params,
        mode=mode,
        few_shot=few_shot,
        tactic_state_comment=config.tactic_state_comment,
        probe=config.probe,
        check_timeout=check_timeout,
    )
    if config.algorithm == "sampling":
        return await WholeProofSampling(task, config, progress).run()
    return await RMaxTS(task, config, progress, store=checkpoint_store).run()
