"""The one entry point the CLI, the service and the evaluator call to search for a proof."""

from __future__ import annotations

from collections.abc import Sequence

from prover.datasets import Problem
from prover.model.base import Generator, SamplingParams
from prover.profiles import Profile
from prover.prompts import PromptMode
from search.attempt import ProofTask, SearchSetupError, Verifier
from search.checkpoint import CheckpointStore
from search.repair import Repair
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
    profile: Profile | None = None,
) -> SearchResult:
    """Search with the configured algorithm; RMaxTS keeps its tree in `checkpoint_store` (or
    in `config.checkpoint`, a file) and resumes from it."""
    config = config or SearchConfig()
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
        profile=profile,
    )
    check_search(task, config.algorithm)
    if config.algorithm == "repair":
        return await Repair(task, config, progress).run()
    if config.algorithm == "sampling":
        return await WholeProofSampling(task, config, progress).run()
    return await RMaxTS(task, config, progress, store=checkpoint_store).run()


def check_search(task: ProofTask, algorithm: str) -> None:
    """Refuse a search the profile's prompt format cannot drive, naming one that can."""
    profile = task.profile
    if algorithm == "rmaxts" and task.chat:
        raise SearchSetupError(
            f"--search rmaxts resumes proofs from tactic-state comments in raw text, which the "
            f"chat format of profile {profile.name} ({task.mode}) cannot do; use --search repair "
            "or sampling")
    if algorithm == "repair" and not task.chat:
        raise SearchSetupError(
            f"--search repair asks the model to correct its proof in a conversation, which the "
            f"raw-text format of profile {profile.name} ({task.mode}) cannot hold; use a chat "
            "profile (deepseek-v2 with cot, goedel-v2, kimina-prover) or --search rmaxts")
