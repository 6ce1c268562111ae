"""The one entry point the CLI, the service and the evaluator call to search for a proof."""

from __future__ import annotations

from collections.abc import Sequence

from prover.datasets import Problem
from prover.lean import LeanPool
from prover.model.base import Generator, SamplingParams
from prover.profiles import DEFAULT_PROFILE, Profile, get_profile
from prover.prompts import PromptMode
from search.attempt import ProofTask, SearchSetupError, Verifier
from search.bfs import BestFirstSearch
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
    in `config.checkpoint`, a file) and resumes from it. Best-first search (`bfs`) needs a
    `LeanPool` as its verifier (it runs tactics on the pool's REPL) and starts afresh each
    time; `check_timeout` is then its per-tactic timeout."""
    config = config or SearchConfig()
    if config.algorithm == "bfs":
        check_tactic_search(profile or get_profile(DEFAULT_PROFILE), mode, verifier)
        assert isinstance(verifier, LeanPool)
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


def check_tactic_search(profile: Profile, mode: PromptMode, verifier: Verifier) -> None:
    """Refuse best-first search under a chat profile: it prompts a step prover with BFS-Prover's
    or ReProver's raw-text proof state, which a chat prover was never trained to continue; and
    without a Lean pool, whose REPL it applies tactics on."""
    format_ = profile.mode(mode)
    if profile.is_chat(format_):
        raise SearchSetupError(
            f"--search bfs prompts a step prover with a proof state in raw text (BFS-Prover's or "
            f"ReProver's format), which the chat format of profile {profile.name} ({format_}) "
            "cannot do; use --search repair or sampling, or serve a step prover with "
            "--profile deepseek-v1.5")
    if not isinstance(verifier, LeanPool):
        raise SearchSetupError("--search bfs applies tactics on a Lean pool's REPL "
                               "(tactic mode); this verifier has none")
