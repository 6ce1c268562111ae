"""Both searches end to end: scripted generation, the fake REPL through the real pool (or the
in-process toy Lean for many-seed runs), checkpoints, determinism and the RMaxTS-vs-sampling gap.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from prover.datasets import Problem
from prover.lean import LeanPool
from prover.model.base import Completion, Generator, SamplingParams
from prover.model.scripted import ScriptedGenerator
from search import CheckpointError, SearchConfig, SearchSetupError, search_proof
from search.attempt import ProofTask
from search.rmaxts import RMaxTS
from tests.conftest import FIXTURES, fake_settings

sys.path.insert(0, str(FIXTURES))
from toy_world import ToyLean, ToyModel, problem

PROBLEM = Problem(name="t1", split="test", header="import Mathlib\n", informal_prefix="",
                  formal_statement="theorem t1 (a : Nat) : a = a := by\n")


class Replies:
    """A script that answers the i-th prompt with the i-th reply."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, prompt: str, seed: int) -> str:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply + "\n```\n"


@pytest.fixture
async def pool():
    async with LeanPool(fake_settings(lean_sandbox="none")) as p:
        yield p


def states(search: RMaxTS) -> list[tuple[int | None, str]]:
    assert search.tree is not None
    return [(n.parent.id if n.parent else None, n.state) for n in search.tree.nodes]


async def test_tree_grows_from_verified_prefixes_through_the_real_checker(pool):
    gen = ScriptedGenerator(Replies(
        "  intro x\n  simp\n  linarith [fail]\n  ring",  # cut at the failing line
        "  norm_num\n  fail",  # resumed from `intro x` (fresh node, UCB tie: expand it)
        "  linarith [fail]",  # fails at once: nothing new
    ))
    search = RMaxTS(ProofTask(PROBLEM, gen, pool),
                    SearchConfig(budget=3, concurrency=1, ordered=True))
    result = await search.run()
    assert not result.proved and result.samples == 3
    root = "⊢ a = a"
    assert states(search) == [
        (None, root),
        (0, root + " [after: intro x]"),
        (1, root + " [after: intro x; simp]"),
        (1, root + " [after: intro x; norm_num]"),
    ]
    assert result.tree_size == 4 and result.best_depth == 2
    # The second prompt resumed from a verified prefix, with its tactic state after it.
    assert gen.prompts[1].endswith(
        "theorem t1 (a : Nat) : a = a := by\n  intro x\n"
        "  /- tactic state:\n    ⊢ a = a [after: intro x]\n  -/\n"
    )
    assert search.tree is not None
    root_node, first, _, third = search.tree.nodes
    assert [c.prefix for c in third.codes] == ["  intro x\n  norm_num\n"]
    # Rewards: expansions 1 (root) and 2 (`intro x`) added nodes; 3 (root again) did not.
    assert (first.reward, first.visits) == (1.0, 1.0)
    assert root_node.reward == pytest.approx(0.99) and root_node.visits == pytest.approx(1.99)


async def test_tactic_state_comment_can_be_switched_off(pool):
    gen = ScriptedGenerator(Replies("  intro x\n  fail", "  fail"))
    await search_proof(PROBLEM, gen, pool, SearchConfig(budget=2, concurrency=1, ordered=True,
                                                         tactic_state_comment=False))
    assert gen.prompts[1].endswith(":= by\n  intro x\n")


async def test_first_proof_stops_the_search_and_is_returned_checked(pool):
    gen = ScriptedGenerator(Replies("  intro x\n  fail", "  intro x\n  fail", "  simp\n  rfl"))
    result = await search_proof(PROBLEM, gen, pool,
                                SearchConfig(budget=50, concurrency=1, ordered=True))
    assert result.proved and result.verdict == "proved" and result.samples == 3
    assert result.proof is not None and result.proof.startswith("import Mathlib\ntheorem t1")
    assert result.proof.endswith("  simp\n  rfl")
    out = result.to_json()
    assert set(out) >= {"proved", "proof", "verdict", "samples", "tree_size", "time_s"}


async def test_sampling_counts_samples_and_stops_at_the_first_proof(pool):
    replies = Replies(*(["  fail"] * 4 + ["  rfl"]))
    gen = ScriptedGenerator(replies)
    result = await search_proof(PROBLEM, gen, pool,
                                SearchConfig(algorithm="sampling", budget=20, concurrency=1))
    assert result.proved and result.samples == 5 and result.tree_size == 0
    gen2 = ScriptedGenerator(Replies("  fail"))
    result = await search_proof(PROBLEM, gen2, pool,
                                SearchConfig(algorithm="sampling", budget=7, concurrency=3))
    assert not result.proved and result.samples == 7 and result.verdict == "failed"
    assert all(p == gen2.prompts[0] for p in gen2.prompts)  # always the base prompt


async def test_a_statement_that_does_not_elaborate_fails_before_sampling(pool):
    bad = Problem(name="clash", split="", header="import Mathlib\ndef clash : Nat := 1\n",
                  informal_prefix="", formal_statement="theorem clash (a : Nat) : a = a := by\n")
    gen = ScriptedGenerator(Replies("  rfl"))
    with pytest.raises(SearchSetupError, match="does not elaborate"):
        await search_proof(bad, gen, pool, SearchConfig(budget=4))
    assert gen.prompts == []


class Gauge(Generator):
    """Counts how many generations are in flight at once; each waits for a release."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def _generate(self, prompts, n, params: SamplingParams):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.peak >= 5:
            self.gate.set()
        await self.gate.wait()
        self.in_flight -= 1
        return [[Completion("  wrong\n```", 2)] for _ in prompts]


async def test_k_samples_are_in_flight_at_once():
    gauge = Gauge()
    result = await search_proof(problem(), gauge, ToyLean(3),
                                SearchConfig(budget=40, concurrency=5))
    assert gauge.peak == 5 and result.samples == 40


def run_toy(config: SearchConfig, depth: int = 6, p: float = 0.3):
    return asyncio.run(search_proof(problem(), ToyModel(depth, p).generator(), ToyLean(depth),
                                    config))


def test_deterministic_for_a_fixed_seed_even_with_concurrency():
    def tree_of(seed: int) -> tuple[bool, int, int]:
        r = run_toy(SearchConfig(budget=60, concurrency=8, seed=seed, ordered=True))
        return r.proved, r.samples, r.tree_size

    assert tree_of(3) == tree_of(3)
    assert len({tree_of(s) for s in range(6)}) > 1


async def test_checkpoint_resume_gives_the_same_search_as_an_uninterrupted_run(tmp_path):
    def cfg(path: Path, budget: int) -> SearchConfig:
        return SearchConfig(budget=budget, concurrency=1, seed=11, ordered=True,
                            checkpoint=path, checkpoint_every=5)

    async def run(path: Path, budget: int) -> RMaxTS:
        task = ProofTask(problem(), ToyModel(8, 0.3).generator(), ToyLean(8))
        search = RMaxTS(task, cfg(path, budget))
        await search.run()
        return search

    straight = await run(tmp_path / "a.json", 40)
    first = await run(tmp_path / "b.json", 17)
    assert not first.proof and first.samples == 17
    resumed = await run(tmp_path / "b.json", 40)
    assert resumed.samples == straight.samples == 40
    assert resumed.tree is not None and straight.tree is not None
    assert resumed.tree.to_json() == straight.tree.to_json()
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["version"] == 1 and saved["samples"] == 40


async def test_a_killed_search_resumes_from_its_last_checkpoint(tmp_path):
    path = tmp_path / "ck.json"
    lean = ToyLean(30)
    config = SearchConfig(budget=400, concurrency=4, seed=2, checkpoint=path, checkpoint_every=8)
    task = ProofTask(problem(), ToyModel(30, 0.5).generator(), lean)
    search = RMaxTS(task, config)
    runner = asyncio.ensure_future(search.run())
    while len(lean.requests) < 60:
        await asyncio.sleep(0)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    saved = json.loads(path.read_text())
    assert 0 < saved["samples"] < 400
    again = RMaxTS(ProofTask(problem(), ToyModel(30, 0.5).generator(), ToyLean(30)), config)
    result = await again.run()
    assert result.resumed_from == saved["samples"]
    assert result.samples == 400 or result.proved
    assert result.tree_size >= len(saved["tree"]["nodes"])


async def test_checkpoints_of_other_problems_or_versions_are_refused(tmp_path):
    path = tmp_path / "ck.json"
    task = ProofTask(problem(), ToyModel(3, 0.0).generator(), ToyLean(3))
    await RMaxTS(task, SearchConfig(budget=3, checkpoint=path)).run()
    other = ProofTask(problem("other"), ToyModel(3, 0.0).generator(), ToyLean(3))
    with pytest.raises(CheckpointError, match="different problem"):
        await RMaxTS(other, SearchConfig(budget=3, checkpoint=path)).run()
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="version 99"):
        await RMaxTS(task, SearchConfig(budget=3, checkpoint=path)).run()
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        await RMaxTS(task, SearchConfig(budget=3, checkpoint=path)).run()


def test_rmaxts_proves_far_more_often_than_sampling_at_the_same_budget():
    """The point of RMaxTS: a proof of 6 lines, each right with probability 0.3, budget 128.

    Sampling needs all six lines right in one go (0.3^6, under 0.1% per sample); the tree keeps
    every verified prefix and resumes from it, so it needs one more right line at a time.
    """
    seeds = range(40)

    def rate(algorithm: str) -> float:
        wins = sum(run_toy(SearchConfig(algorithm=algorithm, budget=128, concurrency=4,
                                        seed=s, ordered=True)).proved for s in seeds)
        return wins / len(seeds)

    sampling, rmaxts = rate("sampling"), rate("rmaxts")
    assert sampling <= 0.3
    assert rmaxts >= 0.8
    assert rmaxts - sampling >= 0.5


async def test_concurrent_attempts_stopping_at_the_same_prefix_share_one_probe():
    lean = ToyLean(3)
    gen = ScriptedGenerator(lambda prompt, seed: "  step1\n  wrong\n```")
    task = ProofTask(problem(), gen, lean)
    result = await RMaxTS(task, SearchConfig(budget=8, concurrency=8)).run()
    assert result.samples == 8 and result.tree_size == 2
    probes = [r for r in lean.requests if r.code.rstrip().endswith("sorry")]
    # One for the root goal, one for the shared prefix `step1`.
    assert len(probes) == 2 and task.probes == 1


class MemoryStore:
    """A checkpoint store that keeps the last state in memory, written after a delay."""

    where = "memory"

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.saves = 0
        self.pending: list[asyncio.Task[None]] = []

    async def load(self) -> bytes | None:
        return self.data

    def save(self, data: dict) -> None:
        async def later() -> None:
            await asyncio.sleep(0)
            self.data = json.dumps(data).encode()
            self.saves += 1

        self.pending.append(asyncio.ensure_future(later()))

    async def flush(self) -> None:
        await asyncio.gather(*self.pending)


async def test_any_checkpoint_store_works_and_is_flushed_at_the_end():
    store = MemoryStore()
    config = SearchConfig(budget=20, concurrency=2, seed=4, checkpoint_every=5)
    first = await search_proof(problem(), ToyModel(9, 0.3).generator(), ToyLean(9), config,
                               checkpoint_store=store)
    assert store.data is not None and json.loads(store.data)["samples"] == first.samples == 20
    more = SearchConfig(budget=30, concurrency=2, seed=4, checkpoint_every=5)
    second = await search_proof(problem(), ToyModel(9, 0.3).generator(), ToyLean(9), more,
                                checkpoint_store=store)
    assert second.resumed_from == 20 and (second.samples == 30 or second.proved)
