"""`--search bfs`: best-first tactic search (search/bfs.py) on the fake REPL's stairs world,
where `⊢ stairs N` needs N `step` tactics, `skip` leaves the goals as they are (a state to
merge), `native_decide` closes the goal in tactic mode only (the whole-file check refuses it),
and anything else does not parse. The scripted step prover gets `step` right only sometimes."""

from __future__ import annotations

import math
import random

import pytest

from prover.lean import LeanPool
from prover.model.scripted import ScriptedGenerator
from prover.problem_input import problem_from_statement
from search import SearchConfig, SearchProgress, SearchSetupError, search_proof
from search.bfs import BestFirstSearch
from tests.conftest import fake_settings

DEPTH = 4
STATEMENT = f"theorem climb (n : Nat) : stairs {DEPTH}"
WRONG = ("skip", "native_decide", "simp", "omega", "linarith")


def step_prover(p: float) -> ScriptedGenerator:
    """Writes `step` with probability p, else one of WRONG; log-probabilities to match."""
    prompts: list[str] = []

    def script(prompt: str, seed: int) -> tuple[str, float]:
        prompts.append(prompt)
        rng = random.Random(seed)
        if rng.random() < p:
            return "step", math.log(p)
        return rng.choice(WRONG), math.log((1 - p) / len(WRONG))

    gen = ScriptedGenerator(script)
    gen.seen = prompts  # type: ignore[attr-defined]
    return gen


async def test_bfs_proves_what_the_model_gets_right_only_sometimes() -> None:
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    proved, merged, refused = 0, 0, 0
    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        for seed in range(20):
            config = SearchConfig(algorithm="bfs", budget=12, seed=seed,
                                  tactics_per_expansion=12)
            gen = step_prover(0.3)
            events: list[SearchProgress] = []
            search = BestFirstSearch(problem, gen, pool, config, events.append)
            result = await search.run()
            merged += search.merged
            refused += search.refused
            assert result.samples <= 12 and result.samples == search.expansions
            assert events[0].tree_delta is not None and events[0].tree_delta["reset"]
            assert all(prompt.endswith(":::") for prompt in gen.seen)  # BFS-Prover's format
            if result.proved:
                proved += 1
                assert result.proof is not None
                assert result.proof.endswith(":= by\n" + "\n".join(["  step"] * DEPTH))
                assert result.check is not None and result.check.verdict.value == "proved"
                last = events[-1].tree_delta
                assert last is not None and last["proof_path"][0] == 0
                assert len(last["proof_path"]) == DEPTH + 1
    # Each state needs one `step` among 12 samples (p = 0.98), four times over: ~94% of runs.
    assert proved >= 16, proved
    assert merged > 0  # `skip` reached states already seen
    assert refused > 0  # `native_decide` closed goals in tactic mode; the file check refused


async def test_bfs_ranks_by_cumulative_logprob_and_uses_the_prompt_format() -> None:
    """A likelier first tactic is expanded first; ReProver's format is the state alone."""
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    prompts: list[str] = []

    def script(prompt: str, seed: int) -> tuple[str, float]:
        prompts.append(prompt)
        return ("step", -0.1) if seed % 2 == 0 else ("skip", -5.0)

    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        config = SearchConfig(algorithm="bfs", budget=DEPTH, tactics_per_expansion=2,
                              prompt_format="reprover")
        result = await search_proof(problem, ScriptedGenerator(script), pool, config)
    assert result.proved and result.samples == DEPTH  # never wasted an expansion
    assert prompts[0] == f"⊢ stairs {DEPTH}"


async def test_bfs_without_logprobs_says_which_backends_give_them() -> None:
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        config = SearchConfig(algorithm="bfs", budget=2)
        with pytest.raises(SearchSetupError, match="log-probabilities.*vllm or openai"):
            await search_proof(problem, ScriptedGenerator(lambda p, s: "step"), pool, config)
