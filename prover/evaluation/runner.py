"""Run an evaluation: every unfinished (problem, run) of the plan, P at a time, on this machine's
model and Lean pool, or as jobs on the service's Redis queue for any number of workers.

Either way this process owns the output directory: it appends a result line the moment a
(problem, run) finishes and rewrites the reports at the end (and when interrupted), so killing
it at any point and running the same command again continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from prover.evaluation.plan import EvalSpec, Item, checkpoint_path, plan
from prover.evaluation.report import write_reports
from prover.evaluation.store import ResultStore
from prover.model.base import Generator, SamplingParams
from prover.profiles import get_profile
from search import SearchConfig, SearchResult, SearchSetupError, Verifier, search_with_answer
from search.loop import run_slots

Solver = Callable[[Item], Awaitable[dict[str, Any]]]


def row_of(item: Item, result: SearchResult | None, error: str | None = None) -> dict[str, Any]:
    """One results.jsonl line: interface.md's fields, plus what resuming and reports need."""
    return {
        "name": item.problem.name,
        "key": item.key,
        "run": item.run,
        "mode": item.mode,
        "proved": bool(result and result.proved),
        "proof": result.proof if result else None,
        "samples": result.samples if result else 0,
        "time_s": round(result.time_s, 3) if result else 0.0,
        "verdict": result.verdict if result else ("invalid" if item.invalid else "error"),
        "tree_size": result.tree_size if result else 0,
        "error": error,
    }


def eval_id(spec: EvalSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def search_config(spec: EvalSpec, seed: int, checkpoint: Path | None = None) -> SearchConfig:
    """The search one (problem, run) of the evaluation runs."""
    return SearchConfig(algorithm=spec.search,  # type: ignore[arg-type]
                        budget=spec.budget, concurrency=spec.concurrency, seed=seed,
                        checkpoint=checkpoint, samples=spec.samples,
                        corrections=spec.corrections, rounds=spec.rounds)


def local_solver(spec: EvalSpec, out: Path, generator: Generator, verifier: Verifier,
                 params: SamplingParams | None = None,
                 check_timeout: float | None = None) -> Solver:
    """Search each item here; RMaxTS trees are checkpointed under DIR/checkpoints/."""

    async def solve(item: Item) -> dict[str, Any]:
        ck = checkpoint_path(out, item) if spec.search == "rmaxts" else None
        config = search_config(spec, item.seed, ck)
        try:
            result = await search_with_answer(item.problem, generator, verifier, config,
                                              params=params, mode=item.mode,
                                              check_timeout=check_timeout,
                                              profile=get_profile(spec.profile))
        except SearchSetupError as exc:
            return row_of(item, None, str(exc))
        row = row_of(item, result)
        if ck is not None:
            ck.unlink(missing_ok=True)  # the result line supersedes the tree
        return row

    return solve


class Progress:
    """problems done, proved so far, pass rate, samples/s, ETA (tqdm's)."""

    def __init__(self, total: int, done: int, proved: set[str], problems: int,
                 enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=done, unit="run", file=sys.stderr,
                        disable=None if enabled else True, dynamic_ncols=True)
        self.proved = proved
        self.problems = problems
        self.samples = 0
        self.started = time.monotonic()
        self._post()

    def _post(self) -> None:
        rate = len(self.proved) / self.problems if self.problems else 0.0
        speed = self.samples / max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix(proved=len(self.proved), pass_rate=f"{rate:.1%}",
                             samples_s=f"{speed:.1f}", refresh=False)

    def add(self, row: dict[str, Any]) -> None:
        if row["proved"]:
            self.proved.add(row["key"])
        self.samples += int(row["samples"])
        self._post()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


async def evaluate(spec: EvalSpec, out: Path, solve: Solver, *, parallel: int = 4,
                   progress: bool = True, lean_env: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Run what is unfinished, `parallel` (problem, run) pairs at a time; returns the summary.
    `lean_env` describes the environment the proofs are checked in, for the report."""
    items = plan(spec)
    store = ResultStore(out, spec).open()
    bar: Progress | None = None
    try:
        done = store.done()
        for item in items:  # unparsable problems are results too: recorded, never retried
            if item.invalid and (item.key, item.run) not in done:
                store.append(row_of(item, None, item.invalid))
        done = store.done()
        pending = [i for i in items if (i.key, i.run) not in done]
        proved = {r["key"] for r in store.results if r.get("proved")}
        bar = Progress(len(items), len(items) - len(pending), proved,
                       len({i.key for i in items}), progress)
        # A problem already proved in one run still gets its other runs: pass@k per run is
        # part of the report, and skipping would bias the per-run numbers.

        def handle(index: int, row: dict[str, Any]) -> bool:
            store.append(row)
            assert bar is not None
            bar.add(row)
            return False

        if pending:
            await run_slots(lambda i: solve(pending[i]), handle, first=0,
                            budget=len(pending), concurrency=parallel)
    finally:
        if bar is not None:
            bar.close()
        store.close()
        summary = write_reports(out, spec, items, store.results, lean_env)
    return summary
