#!/usr/bin/env python3
"""Benchmark of the search loop's own cost, with instant backends (no model, no Lean).

    .venv/bin/python benchmarks/search.py [--quick]

(a) ms_per_sample: wall time per RMaxTS sample on a tree pre-grown to 10^3, 10^4 and 10^5
    nodes (goal: under 1 ms at 10^4). The backends are the in-process toy model and toy Lean of
    tests/fixtures/toy_world.py, so this is everything our code does per sample: selection with
    virtual loss, prompt building, segmentation of the checker's answer, tree update and reward
    propagation. `tree_ops_us_per_sample` isolates the tree operations alone.
(b) speedup_vs_polling: samples/s of our event-driven loop against the reference
    implementation's loop structure (walk the job slots, then sleep 0.1 s), same backends, same
    budget, same concurrency. With instant backends, and again with backends that take 20 ms
    per generation, where polling costs less but still holds every finished slot until the
    next pass.

Human-readable lines first; the LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

from toy_world import ToyLean, ToyModel, problem  # noqa: E402

import search.rmaxts as rmaxts_module  # noqa: E402
from prover.model.base import Completion, SamplingParams  # noqa: E402
from prover.model.scripted import ScriptedGenerator  # noqa: E402
from search.attempt import ProofTask  # noqa: E402
from search.loop import run_slots  # noqa: E402
from search.rmaxts import RMaxTS  # noqa: E402
from search.segments import Step  # noqa: E402
from search.tree import Code, Node, Tree  # noqa: E402
from search.types import SearchConfig  # noqa: E402

R = TypeVar("R")
DEPTH = 12  # toy proof length: long enough that nothing is proved during a measurement


def grown_tree(size: int, seed: int = 0) -> Tree:
    """A random tree of `size` nodes with visit statistics, shaped like a long RMaxTS run:
    most nodes hang near the frontier, some near the root, so branching varies."""
    rng = random.Random(seed)
    tree = Tree(0.99, root_state="root")
    nodes = tree.nodes
    for i in range(1, size):
        if rng.random() < 0.8:
            parent = nodes[min(len(nodes) - 1, int(len(nodes) * (1 - rng.random() ** 3)))]
        else:
            parent = nodes[rng.randrange(min(len(nodes), 50))]
        node = Node(i, parent, f"state {i}")
        parent.children[node.state] = node
        node.add_code(Code(parent.codes[0].prefix + f"  tactic{i}\n", 2))
        nodes.append(node)
        tree.max_depth = max(tree.max_depth, node.depth)
    for node in reversed(nodes):  # statistics consistent with a history of expansions
        for _ in range(rng.randrange(1, 4)):
            tree.reward(node, float(rng.random() < 0.3))
    return tree


def tree_ops_us(size: int, samples: int) -> float:
    tree = grown_tree(size)
    rng = random.Random(1)
    start = time.perf_counter()
    for i in range(samples):
        node = tree.select()
        prefix = node.codes[0].prefix
        steps = [Step(prefix + f"  new{i}\n", f"new state {i}", 2)] if rng.random() < 0.3 else []
        _, added = tree.insert(steps)
        tree.reward(node, 1.0 if added else 0.0)
        tree.finish(node)
    return (time.perf_counter() - start) / samples * 1e6


async def ms_per_sample(size: int, samples: int, concurrency: int) -> float:
    tree = grown_tree(size)
    task = ProofTask(problem(), ToyModel(DEPTH, 0.3).generator(), ToyLean(DEPTH))
    config = SearchConfig(budget=samples, concurrency=concurrency, seed=0)
    search = RMaxTS(task, config, tree=tree)
    start = time.perf_counter()
    result = await search.run()
    elapsed = time.perf_counter() - start
    return elapsed / result.samples * 1e3


async def polling_slots(
    issue: Callable[[int], Awaitable[R]],
    handle: Callable[[int, R], bool],
    *,
    first: int,
    budget: int,
    concurrency: int,
    ordered: bool = False,
) -> int:
    """The reference implementation's loop: walk the slots, start or collect, sleep 0.1 s."""
    slots: list[tuple[int, asyncio.Task[R]] | None] = [None] * concurrency
    next_index, end, handled = first, first + budget, 0
    while next_index < end or any(slots):
        for k, slot in enumerate(slots):
            if slot is None and next_index < end:
                slots[k] = slot = (next_index, asyncio.ensure_future(issue(next_index)))
                next_index += 1
            if slot is not None and slot[1].done():
                slots[k] = None
                handled += 1
                if handle(slot[0], slot[1].result()):
                    for s in slots:
                        if s is not None:
                            s[1].cancel()
                    return handled
        await asyncio.sleep(0.1)
    return handled


class LatencyModel(ScriptedGenerator):
    def __init__(self, model: ToyModel, latency: float) -> None:
        super().__init__(model)
        self.latency = latency

    async def _generate(self, prompts: Any, n: int, params: SamplingParams
                        ) -> list[list[Completion]]:
        await asyncio.sleep(self.latency)
        return await super()._generate(prompts, n, params)


async def samples_per_s(loop: Any, budget: int, concurrency: int, latency: float) -> float:
    rmaxts_module.run_slots = loop  # type: ignore[attr-defined]
    try:
        model = ToyModel(DEPTH, 0.3)
        gen = LatencyModel(model, latency) if latency else model.generator()
        task = ProofTask(problem(), gen, ToyLean(DEPTH))
        search = RMaxTS(task, SearchConfig(budget=budget, concurrency=concurrency, seed=0))
        start = time.perf_counter()
        result = await search.run()
        return result.samples / (time.perf_counter() - start)
    finally:
        rmaxts_module.run_slots = run_slots  # type: ignore[attr-defined]


async def main(quick: bool) -> dict[str, Any]:
    sizes = (1_000, 10_000, 100_000)
    samples = 300 if quick else 2_000
    report: dict[str, Any] = {"ms_per_sample": {}, "tree_ops_us_per_sample": {}}
    for size in sizes:
        ms = await ms_per_sample(size, samples, concurrency=32)
        us = tree_ops_us(size, samples)
        report["ms_per_sample"][str(size)] = round(ms, 4)
        report["tree_ops_us_per_sample"][str(size)] = round(us, 1)
        print(f"tree of {size:>7,} nodes: {ms:.3f} ms per sample in all, "
              f"{us:.1f} us of it in tree operations")
    budget = 256 if quick else 1_024
    for latency, key in ((0.0, "speedup_vs_polling"), (0.02, "speedup_vs_polling_20ms")):
        ours = await samples_per_s(run_slots, budget, 32, latency)
        polling = await samples_per_s(polling_slots, budget, 32, latency)
        report[key] = round(ours / polling, 2)
        report[key.replace("speedup", "samples_per_s")] = {
            "ours": round(ours, 1), "polling": round(polling, 1)}
        print(f"generation latency {latency * 1e3:.0f} ms: {ours:,.0f} samples/s against "
              f"{polling:,.0f} for the polling loop ({ours / polling:.1f}x)")
    report["budget"], report["concurrency"], report["samples"] = budget, 32, samples
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (for CI)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
