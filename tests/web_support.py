"""Helpers for the web page's tests: a scripted model that grows an RMaxTS tree on the fake
REPL, and a replay of tree deltas the way the page applies them."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from prover.model.base import Completion, SamplingParams
from prover.model.scripted import ScriptedGenerator

TACTICS = ("simp", "ring_nf", "norm_num", "intro h", "nlinarith", "omega", "field_simp",
           "linarith", "positivity", "constructor", "norm_cast", "push_cast")
_NAME = re.compile(r"theorem\s+(\S+)")


class TreeGrower:
    """A model for the fake REPL: each completion adds one to three tactic lines (each a new toy
    tactic state) and then fails, so RMaxTS keeps adding nodes; a theorem named in
    `prove_after` gets a proof (`rfl`) from its N-th sample on. Theorems are told apart by the
    name in the prompt (its last `theorem NAME`)."""

    def __init__(self, prove_after: dict[str, int] | None = None) -> None:
        self.prove_after = dict(prove_after or {})
        self.calls: Counter[str] = Counter()

    def __call__(self, prompt: str, seed: int) -> str:
        names = _NAME.findall(prompt)
        name = names[-1] if names else ""
        self.calls[name] += 1
        n = self.calls[name]
        if name in self.prove_after and n >= self.prove_after[name]:
            return "  rfl\n```\n"
        rng = random.Random(f"{name}:{seed}:{n}")
        lines = [f"  {rng.choice(TACTICS)}\n" for _ in range(rng.randint(1, 3))]
        return "".join(lines) + "  fail\n```\n"


class SlowScripted(ScriptedGenerator):
    """A scripted model whose generations take `delay` seconds each (a GPU, roughly), and
    that can be held before a given call so a test can look at a job mid-search."""

    def __init__(self, script: TreeGrower, delay: float = 0.0,
                 hold_at: int | None = None, slow: dict[str, float] | None = None) -> None:
        super().__init__(script)
        self.delay = delay
        self.slow = dict(slow or {})  # theorem name -> seconds per generation instead
        self.hold_at = hold_at
        self.count = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def _generate(self, prompts: Sequence[str], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        self.count += 1
        if self.hold_at is not None and self.count >= self.hold_at:
            self.holding.set()
            await self.release.wait()
        names = _NAME.findall(prompts[0]) if prompts else []
        delay = self.slow.get(names[-1], self.delay) if names else self.delay
        if delay:
            await asyncio.sleep(delay)
        return await super()._generate(prompts, n, params)


class ReplayedTree:
    """The page's view model in Python: folds deltas exactly as `static/tree.js` does."""

    def __init__(self) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        self.stats: dict[int, tuple[float, float]] = {}
        self.proof_path: list[int] | None = None
        self.orphans = 0  # nodes whose parent was never seen: lost deltas
        self.resets = 0

    def apply(self, delta: dict[str, Any]) -> None:
        if delta.get("reset"):
            self.nodes.clear()
            self.stats.clear()
            self.proof_path = None
            self.resets += 1
        for node in delta.get("new_nodes") or ():
            if node["parent"] is not None and node["parent"] not in self.nodes:
                self.orphans += 1
            self.nodes[node["id"]] = node
        for node_id, visits, value in delta.get("stats") or ():
            self.stats[node_id] = (visits, value)
        if delta.get("proof_path"):
            self.proof_path = list(delta["proof_path"])
