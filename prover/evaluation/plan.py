"""What an evaluation runs: the problems of a dataset, times R runs, with their prompt modes.

A (problem, run) pair is the unit of work, of resumption and of distribution: it is finished
once its line is in results.jsonl, and nothing else decides that. Problems whose statement
cannot be parsed are kept in the plan as `invalid` so that they count against the pass rate and
show up in the report instead of vanishing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from prover import leandojo
from prover.config import Settings
from prover.dataset_catalog import source_of
from prover.datasets import DatasetError, Problem, dataset_path, load_problems, problem_keys
from prover.lean.environments import environment_names, resolve_name
from prover.lean.source import StatementError, parse_statement
from prover.prompts import PromptMode

EvalMode = Literal["cot", "non-cot", "mix"]
EVAL_MODES: tuple[EvalMode, ...] = ("non-cot", "cot", "mix")


@dataclass(frozen=True)
class EvalSpec:
    """Everything that decides the numbers of an evaluation; stored in DIR/config.json so that a
    rerun into the same directory cannot silently mix two different evaluations."""

    dataset: str
    split: str | None = "test"
    limit: int | None = None
    problems: tuple[str, ...] = ()
    search: str = "rmaxts"
    budget: int = 128
    runs: int = 1
    mode: EvalMode = "non-cot"
    seed: int = 0
    concurrency: int = 32  # samples in flight per problem
    lean_env: str | None = None  # the Lean environment the proofs are checked in
    profile: str = "deepseek-v1.5"  # prover/profiles.py
    samples: int = 8  # repair: first-round samples, corrections per failed attempt, rounds
    corrections: int = 2
    rounds: int = 2

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = list(self.problems)
        return data

    def mode_of_run(self, run: int) -> PromptMode:
        """`mix` splits the runs between the two formats, as the paper's (16 + 16) x 6400."""
        if self.mode == "mix":
            return "cot" if run % 2 == 0 else "non-cot"
        return self.mode

    def seed_of_run(self, run: int) -> int:
        return self.seed * 1000 + run


@dataclass(frozen=True)
class Item:
    key: str  # the problem's unique address in the dataset (NAME, or NAME#K when names repeat)
    problem: Problem
    run: int
    mode: PromptMode
    seed: int
    invalid: str | None = None  # why the problem cannot be attempted


def target_environment(dataset: str, explicit: str | None, settings: Settings) -> str:
    """The environment an evaluation checks in: the one asked for; else the one the dataset
    targets (prover/dataset_catalog.py) when this process has it; else the default. Raises
    UnknownEnvironment for an explicit name it does not have."""
    if explicit is not None:
        return resolve_name(settings, explicit)
    source = source_of(Path(dataset).name if dataset.endswith(".jsonl") else dataset)
    if source is not None and source.lean_env in environment_names(settings):
        return source.lean_env
    return resolve_name(settings, None)


def plan(spec: EvalSpec) -> list[Item]:
    path: Path | str
    if spec.dataset.startswith(leandojo.PREFIX):  # skipped theorems: see prover/leandojo.py
        path, (everything, _) = spec.dataset, leandojo.load_benchmark(spec.dataset)
    else:
        path = dataset_path(spec.dataset)
        everything = load_problems(path)
    keys = dict(zip(map(id, everything), problem_keys(everything), strict=True))
    chosen = [p for p in everything if spec.split is None or p.split == spec.split]
    if not chosen:
        splits = sorted({p.split for p in everything})
        raise DatasetError(f"{path}: no problems in split {spec.split!r} "
                           f"(its splits: {', '.join(splits)})")
    if spec.problems:
        wanted = set(spec.problems)
        chosen = [p for p in chosen if p.name in wanted or keys[id(p)] in wanted]
        found = {p.name for p in chosen} | {keys[id(p)] for p in chosen}
        missing = sorted(wanted - found)
        if missing:
            raise DatasetError(f"{path}: no problem(s) {', '.join(missing)} in split "
                               f"{spec.split!r}")
    if spec.limit is not None:
        chosen = chosen[: spec.limit]
    items: list[Item] = []
    for problem in chosen:
        reason = _invalid(problem)
        for run in range(spec.runs):
            items.append(Item(keys[id(problem)], problem, run, spec.mode_of_run(run),
                              spec.seed_of_run(run), reason))
    return items


def _invalid(problem: Problem) -> str | None:
    try:
        parse_statement(problem.formal_statement)
    except StatementError as exc:
        return f"statement cannot be parsed: {exc}"
    return None


def checkpoint_path(out: Path, item: Item) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in item.key)
    return out / "checkpoints" / f"{safe}.run{item.run}.json"
