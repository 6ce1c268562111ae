"""Best-first tactic search, as in ReProver, InternLM-StepProver and BFS-Prover: a step prover
proposes tactics for one proof state, and the open state whose tactics are jointly the most
likely is expanded next.

A node's priority is the cumulative log-probability of the tactics from the root to it. Each
expansion samples K tactics for the best open node, applies each on a tactic session
(prover/lean/tactic_session.py, so every state lives in a REPL), and queues the new states;
states with the same goals are merged (the first path to reach them is kept). The budget counts
expansions. A tactic past its timeout restarts the session's REPL; the search then reopens the
session and replays the tactic paths of the states it still needs. A proof is reported only
after the session's whole-file check.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prover.datasets import Problem
from prover.lean import LeanPool
from prover.lean.tactic_session import (
    SessionError,
    SessionGone,
    SessionSetupError,
    TacticOutcome,
    TacticSessions,
)
from prover.model.base import Completion, Generator, SamplingParams
from search.attempt import SearchSetupError, sample_seed
from search.types import ProgressCallback, SearchConfig, SearchProgress, SearchResult

# The step provers' prompt formats: the goals as Lean prints them, then the model's cue.
PROMPT_FORMATS: dict[str, Callable[[str], str]] = {
    "bfs-prover": lambda state: state + ":::",  # BFS-Prover(-V2): `{state}:::`
    "reprover": lambda state: state,  # ReProver's tactic generator: the state alone
}
NO_GOALS = "no goals"
MAX_TACTIC_TOKENS = 512


@dataclass
class _Node:
    id: int
    parent: int | None
    tactic: str | None
    goals: tuple[str, ...]
    logprob: float
    depth: int
    state: int  # the session's state id, valid in session generation `generation`
    generation: int

    @property
    def text(self) -> str:
        return "\n\n".join(self.goals) or NO_GOALS


class BestFirstSearch:
    def __init__(
        self,
        problem: Problem,
        generator: Generator,
        pool: LeanPool,
        config: SearchConfig,
        progress: ProgressCallback | None = None,
        *,
        params: SamplingParams | None = None,
        tactic_timeout: float | None = None,
    ) -> None:
        if config.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"unknown tactic prompt format {config.prompt_format!r}; "
                             f"use one of {sorted(PROMPT_FORMATS)}")
        self.problem = problem
        self.generator = generator
        self.sessions = TacticSessions.of(pool)
        self.config = config
        self.progress = progress
        self.params = params or SamplingParams()
        self.tactic_timeout = tactic_timeout
        self.prompt = PROMPT_FORMATS[config.prompt_format]
        self.nodes: list[_Node] = []
        self.seen: dict[tuple[str, ...], int] = {}
        self.frontier: list[tuple[float, int, int]] = []
        self._order = itertools.count()
        self.session = ""
        self.generation = 0
        self.expansions = 0
        self.merged = 0
        self.tactic_errors = 0
        self.refused = 0  # closed in tactic mode, refused by the whole-file check
        self._owner = f"search:{problem.name}:{id(self)}"

    # ---------------------------------------------------------------- the session

    async def _open(self) -> tuple[int, tuple[str, ...]]:
        try:
            sid, root = await self.sessions.open(
                header=self.problem.header, statement=self.problem.formal_statement,
                owner=self._owner)
        except SessionSetupError as exc:
            raise SearchSetupError(f"{self.problem.name}: {exc}") from exc
        self.session = sid
        self.generation += 1
        return root.state, root.goals

    async def _state_of(self, node: _Node) -> int | None:
        """The node's state in the current session, replaying its path after a restart."""
        if node.generation == self.generation:
            return node.state
        assert node.parent is not None and node.tactic is not None
        parent = await self._state_of(self.nodes[node.parent])
        if parent is None:
            return None
        try:
            out = await self.sessions.apply(self.session, parent, node.tactic, self.tactic_timeout)
        except SessionGone:
            await self._reopen()
            return None
        if out.kind != "state":
            return None  # Lean did not repeat itself; give this branch up
        node.state, node.generation = out.state or 0, self.generation
        return node.state

    async def _reopen(self) -> None:
        root = self.nodes[0]
        root.state, _ = await self._open()
        root.generation = self.generation

    async def _apply(self, node: _Node, tactic: str) -> TacticOutcome | None:
        state = await self._state_of(node)
        if state is None:
            return None
        try:
            return await self.sessions.apply(self.session, state, tactic, self.tactic_timeout)
        except SessionGone:  # the tactic timed out (or the REPL died): a failed edge
            await self._reopen()
            return None

    # ---------------------------------------------------------------- the search

    def _push(self, parent: _Node | None, tactic: str | None, goals: tuple[str, ...],
              logprob: float, state: int) -> _Node:
        node = _Node(len(self.nodes), parent.id if parent else None, tactic, goals, logprob,
                     parent.depth + 1 if parent else 0, state, self.generation)
        self.nodes.append(node)
        if goals:
            self.seen[goals] = node.id
            heapq.heappush(self.frontier, (-logprob, next(self._order), node.id))
        return node

    def _sample_params(self) -> SamplingParams:
        p = self.params
        return SamplingParams(
            temperature=p.temperature, top_p=p.top_p,
            max_tokens=min(p.max_tokens, MAX_TACTIC_TOKENS),
            seed=sample_seed(self.config.seed, self.expansions), stop=p.stop, logprobs=True)

    def _tactics(self, completions: list[Completion]) -> list[tuple[str, float]]:
        """Distinct tactics with their log-probabilities, most likely first."""
        best: dict[str, float] = {}
        for c in completions:
            if c.logprob is None:
                raise SearchSetupError(
                    f"the {self.generator.name} backend returned no log-probabilities, which "
                    "--search bfs ranks proof states by; use the vllm or openai backend")
            tactic = c.text.strip()
            if tactic and (tactic not in best or c.logprob > best[tactic]):
                best[tactic] = c.logprob
        return sorted(best.items(), key=lambda kv: -kv[1])

    async def run(self) -> SearchResult:
        started = time.monotonic()
        state, goals = await self._open()
        root = self._push(None, None, goals, 0.0, state)
        self._report(root, 0, proved=False, reset=True)
        proof: TacticOutcome | None = None
        try:
            while self.frontier and self.expansions < self.config.budget and proof is None:
                _, _, nid = heapq.heappop(self.frontier)
                node = self.nodes[nid]
                first_new = len(self.nodes)
                [completions] = await self.generator.generate(
                    [self.prompt(node.text)], self.config.tactics_per_expansion,
                    self._sample_params())
                self.expansions += 1
                for tactic, logprob in self._tactics(completions):
                    out = await self._apply(node, tactic)
                    if out is None or out.kind == "error":
                        self.tactic_errors += 1
                        self.refused += out is not None and out.check is not None
                        continue
                    if out.kind == "proved":
                        self._push(node, tactic, (), node.logprob + logprob, out.state or 0)
                        proof = out
                        break
                    if out.goals in self.seen:
                        self.merged += 1
                        continue
                    self._push(node, tactic, out.goals, node.logprob + logprob, out.state or 0)
                self._report(node, first_new, proved=proof is not None)
        finally:
            with contextlib.suppress(SessionError):  # gone already: nothing to end
                await self.sessions.end(self.session)
        elapsed = time.monotonic() - started
        depth = max(n.depth for n in self.nodes)
        if proof is not None:
            return SearchResult(proved=True, proof=proof.proof, verdict="proved",
                                samples=self.expansions, tree_size=len(self.nodes),
                                time_s=elapsed, best_depth=depth, check=proof.check)
        # "rejected": tactic mode closed the goals but the whole-file check refused the proof.
        return SearchResult(proved=False, proof=None,
                            verdict="rejected" if self.refused else "failed",
                            samples=self.expansions,
                            tree_size=len(self.nodes), time_s=elapsed, best_depth=depth)

    # ---------------------------------------------------------------- live view

    def _report(self, expanded: _Node, first_new: int, *, proved: bool,
                reset: bool = False) -> None:
        """The same progress events and tree deltas as RMaxTS (search.tree.Tree.delta): a
        node's statistics are [id, expansions of it, its cumulative log-probability]."""
        if self.progress is None:
            return

        def entry(n: _Node) -> dict[str, Any]:
            return {"id": n.id, "parent": n.parent, "state": n.text, "depth": n.depth}

        def stat(n: _Node, visits: int) -> list[Any]:
            return [n.id, visits, round(n.logprob, 4)]

        fresh = self.nodes[first_new:]
        if reset:
            delta: dict[str, Any] = {
                "reset": True, "expanded": None, "reward": None,
                "new_nodes": [entry(n) for n in self.nodes],
                "stats": [stat(n, 0) for n in self.nodes], "proof_path": None}
        else:
            path = None
            if proved:
                path, at = [], self.nodes[-1]
                while True:
                    path.append(at.id)
                    if at.parent is None:
                        break
                    at = self.nodes[at.parent]
                path.reverse()
            delta = {"expanded": expanded.id, "reward": None,
                     "new_nodes": [entry(n) for n in fresh],
                     "stats": [stat(expanded, 1), *(stat(n, 0) for n in fresh)],
                     "proof_path": path}
        self.progress(SearchProgress(
            samples=self.expansions, budget=self.config.budget, tree_size=len(self.nodes),
            best_depth=max(n.depth for n in self.nodes), proved=proved, tree_delta=delta,
            verdict=None if reset else ("proved" if proved else "failed")))
