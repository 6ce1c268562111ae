"""RMaxTS: Monte-Carlo tree search over tactic states with an intrinsic reward for novelty.

Each sample selects a node by discounted UCB (virtual loss for the samples still running),
resumes generation from one of the node's proof prefixes, checks the result, truncates it at the
first error and walks the verified steps into the tree. The sample earns reward 1 if it added a
node (RMax: in a sparse-reward problem, discovering new tactic states is the signal) and 0
otherwise, discounted up the ancestors. It stops at the first proof or when the budget is spent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable

from search import checkpoint
from search.attempt import Attempt, ProofTask
from search.loop import run_slots
from search.tree import Node, Tree
from search.types import ProgressCallback, SearchConfig, SearchProgress, SearchResult


class RMaxTS:
    def __init__(
        self,
        task: ProofTask,
        config: SearchConfig,
        progress: ProgressCallback | None = None,
        tree: Tree | None = None,  # start from this tree (benchmarks); a checkpoint wins
        store: checkpoint.CheckpointStore | None = None,  # default: the config's file, if any
    ) -> None:
        if store is None and config.checkpoint is not None:
            store = checkpoint.FileCheckpoint(config.checkpoint)
        self.store = store
        self._initial_tree = tree
        self.task = task
        self.config = config
        self.progress = progress
        self.tree: Tree | None = None
        self.samples = 0  # handled samples, including those of the checkpoint resumed from
        self.next_index = 0
        self.proof: Attempt | None = None
        self.last: Attempt | None = None
        self._fingerprint = checkpoint.fingerprint(
            task.problem.header, task.problem.formal_statement
        )
        self._since_save = 0
        self._saved_proof: dict[str, str] | None = None

    # ---------------------------------------------------------------- set-up / persistence

    async def _setup(self) -> int:
        store = self.store
        data = await checkpoint.load(store, self._fingerprint) if store else None
        if data is not None:
            self.tree = Tree.from_json(data["tree"])
            self.samples = int(data["samples"])
            self.next_index = int(data["next_index"])
            self._saved_proof = data.get("proof")
            return self.samples
        self.tree = self._initial_tree
        if self.tree is None:
            self.tree = Tree(self.config.gamma, await self.task.root_state())
        return 0

    def save(self) -> None:
        if self.store is None or self.tree is None:
            return
        proof = self._saved_proof
        if self.proof is not None:
            proof = {"code": self.task.code(self.proof.body), "verdict": "proved"}
        self.store.save(checkpoint.envelope(
            {
                "fingerprint": self._fingerprint,
                "problem": self.task.problem.name,
                "seed": self.config.seed,
                "samples": self.samples,
                "next_index": self.next_index,
                "proof": proof,
                "tree": self.tree.to_json(),
            }
        ))
        self._since_save = 0

    # ---------------------------------------------------------------- the loop

    async def _expand(self, index: int, node: Node) -> tuple[Node, Attempt]:
        assert self.tree is not None
        code = self.tree.pick_code(node, random.Random(f"{self.config.seed}:{index}"))
        attempt = await self.task.attempt(
            index, code.prefix, node.state if code.prefix else None, code.indent,
            seed=self.config.seed,
        )
        return node, attempt

    def _issue(self, index: int) -> Awaitable[tuple[Node, Attempt]]:
        assert self.tree is not None
        node = self.tree.select()
        self.next_index = max(self.next_index, index + 1)
        return self._expand(index, node)

    def _handle(self, index: int, outcome: tuple[Node, Attempt]) -> bool:
        tree = self.tree
        assert tree is not None
        node, attempt = outcome
        self.samples += 1
        self.last = attempt
        first_new = len(tree)
        reward: float | None = None
        if attempt.proved:
            tree.finish(node)
            self.proof = attempt
        else:
            limit = self.config.max_prefix_chars
            kept = [s for s in attempt.steps if len(s.prefix) <= limit]
            _, added = tree.insert(kept)
            reward = 1.0 if added else 0.0
            tree.reward(node, reward)
            tree.finish(node)
        self._since_save += 1
        if self._since_save >= self.config.checkpoint_every or attempt.proved:
            self.save()
        if self.progress is not None:
            self.progress(
                SearchProgress(
                    samples=self.samples,
                    budget=self.config.budget,
                    tree_size=len(tree),
                    best_depth=tree.max_depth,
                    proved=attempt.proved,
                    tree_delta=tree.delta(node, first_new, reward, attempt.proved),
                    verdict=attempt.result.verdict.value,
                )
            )
        return attempt.proved

    async def run(self) -> SearchResult:
        started = time.monotonic()
        resumed = await self._setup()
        assert self.tree is not None
        if self.progress is not None:
            # Live views start from the whole tree (the root's goal, or all a checkpoint held):
            # the deltas that follow only name what each sample changed.
            tree = self.tree
            self.progress(SearchProgress(
                samples=self.samples, budget=self.config.budget, tree_size=len(tree),
                best_depth=tree.max_depth, tree_delta=tree.snapshot(),
            ))
        if self._saved_proof is None:
            if self.config.ordered:
                self.next_index = self.samples  # lost in-flight samples are redrawn identically
            remaining = self.config.budget - self.samples
            try:
                if remaining > 0:
                    await run_slots(
                        self._issue,
                        self._handle,
                        first=self.next_index,
                        budget=remaining,
                        concurrency=self.config.concurrency,
                        ordered=self.config.ordered,
                    )
            finally:
                self.task.close()
                self.save()
                if self.store is not None:
                    await self.store.flush()
        return self._result(time.monotonic() - started, resumed)

    def _result(self, elapsed: float, resumed: int) -> SearchResult:
        assert self.tree is not None
        if self.proof is not None:
            return SearchResult(
                proved=True, proof=self.task.code(self.proof.body), verdict="proved",
                samples=self.samples, tree_size=len(self.tree), time_s=elapsed,
                best_depth=self.tree.max_depth, check=self.proof.result, resumed_from=resumed,
            )
        if self._saved_proof is not None:
            return SearchResult(
                proved=True, proof=self._saved_proof["code"], verdict="proved",
                samples=self.samples, tree_size=len(self.tree), time_s=elapsed,
                best_depth=self.tree.max_depth, resumed_from=resumed,
            )
        verdict = self.last.result.verdict.value if self.last else "failed"
        return SearchResult(
            proved=False, proof=None, verdict=verdict, samples=self.samples,
            tree_size=len(self.tree), time_s=elapsed, best_depth=self.tree.max_depth,
            check=self.last.result if self.last else None, resumed_from=resumed,
        )
