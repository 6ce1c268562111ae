"""Benchmark problems from JSON-lines files (miniF2F, ProofNet, or a user's own file).

The shared files are DeepSeek-Prover-V1.5's `datasets/*.jsonl`, unchanged, and the newer
benchmarks of prover/dataset_catalog.py (PutnamBench, the maintained miniF2F port, ProofNet# and
ProofNet-Verified). A dataset is named (`minif2f`, `putnambench`, ...: its catalog file, or a
file NAME.jsonl, in the data directory) or given as a path. Records may omit `header` and
`informal_prefix`, as DeepSeek's few-shot file does; they then get DeepSeek's defaults, so
prompts come out as its code builds them.

ProofNet reuses names (three `exercise_5_1` in its test split), so a problem is addressed as
`NAME` when that is unique in its file and as `NAME#K` (the K-th record of that name, counting
from 1 in file order) when it is not; `problem_keys` gives every problem its address.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "PROVER_DATA_DIR"


# What DeepSeek's code puts in front of a statement whose record has no header (the few-shot
# examples have none). Note `maxHeartbeats 0` (no limit), the same as every miniF2F record.
DEFAULT_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


class DatasetError(ValueError):
    """A dataset or problem cannot be used; the message says which file, line or name."""


@dataclass(frozen=True)
class Problem:
    name: str
    split: str
    header: str
    informal_prefix: str
    formal_statement: str
    goal: str | None = None  # the statement's initial goal as Lean prints it
    formal_proof: str | None = None  # only in few-shot files


def data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else REPO.parent / "shared" / "data" / "benchmarks"


@dataclass(frozen=True)
class KnownDataset:
    name: str  # what --dataset, /v1/problems and find_problem take
    on_disk: bool  # False: a catalog dataset fetched on first use
    lean_env: str | None  # the environment its statements target (catalog datasets only)


def known_datasets() -> list[KnownDataset]:
    """Every dataset a name can address, for pickers: the catalog's, by their names (a file such
    as minif2f_lean4_recent.jsonl is `minif2f-recent`, not listed twice), then the data
    directory's other NAME.jsonl files."""
    from prover.dataset_catalog import BY_FILE, CATALOG

    folder = data_dir()
    files = {p.name for p in folder.glob("*.jsonl")}
    named = [KnownDataset(d.name, d.file in files, d.lean_env) for d in CATALOG.values()]
    own = [KnownDataset(Path(f).stem, True, None) for f in sorted(files)
           if f not in BY_FILE and Path(f).stem not in CATALOG]
    return named + own


def dataset_path(source: str | Path) -> Path:
    """The file behind a dataset name or path; names never need an extension."""
    text = str(source)
    if isinstance(source, Path) or text.endswith(".jsonl") or "/" in text or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise DatasetError(f"{path}: no such dataset file")
        return path
    from prover.dataset_catalog import CATALOG
    from prover.dataset_fetch import FetchError, fetch

    named = CATALOG.get(text)
    path = data_dir() / (named.file if named is not None else f"{text}.jsonl")
    if path.is_file():
        return path
    if named is not None:
        try:
            return fetch(text)
        except FetchError as exc:
            raise DatasetError(str(exc)) from None
    known = sorted({p.stem for p in data_dir().glob("*.jsonl")} | set(CATALOG))
    raise DatasetError(
        f"unknown dataset {text!r}: give one of {', '.join(known)} "
        f"(looked in {data_dir()}; set {DATA_DIR_ENV} to use another directory), "
        "or a path to a .jsonl file"
    )


def _parse(line: str, where: str) -> Problem:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")

    def text(key: str, default: str | None = None) -> str | None:
        value = record.get(key, default)
        if value is not None and not isinstance(value, str):
            raise DatasetError(f"{where}: {key!r} must be a string, not {type(value).__name__}")
        return value

    def required(key: str) -> str:
        value = text(key)
        if value is None:
            raise DatasetError(f"{where}: missing {key!r}")
        return value

    return Problem(
        name=required("name"),
        split=text("split") or "",
        header=required("header") if "header" in record else DEFAULT_HEADER,
        informal_prefix=text("informal_prefix") or "",
        formal_statement=required("formal_statement"),
        goal=text("goal"),
        formal_proof=text("formal_proof"),
    )


def load_problems(source: str | Path, split: str | None = None) -> list[Problem]:
    """All problems of a dataset in file order, or those of one split."""
    path = dataset_path(source)
    try:
        with path.open(encoding="utf-8") as f:
            problems = [
                _parse(line, f"{path}:{number}")
                for number, line in enumerate(f, start=1)
                if line.strip()
            ]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    if split is None:
        return problems
    chosen = [p for p in problems if p.split == split]
    if not chosen:
        splits = sorted({p.split for p in problems})
        raise DatasetError(
            f"{path}: no problems in split {split!r} (its splits: {', '.join(splits) or 'none'})"
        )
    return chosen


def problem_keys(problems: list[Problem]) -> list[str]:
    """Addresses that `find_problem` resolves: NAME, or NAME#K where names repeat."""
    totals = Counter(p.name for p in problems)
    seen: Counter[str] = Counter()
    keys = []
    for p in problems:
        seen[p.name] += 1
        keys.append(p.name if totals[p.name] == 1 else f"{p.name}#{seen[p.name]}")
    return keys


@functools.lru_cache(maxsize=8)
def _indexed(path: str, mtime_ns: int) -> tuple[tuple[str, Problem], ...]:
    problems = load_problems(path)
    return tuple(zip(problem_keys(problems), problems, strict=True))


def indexed_problems(source: str | Path) -> tuple[tuple[str, Problem], ...]:
    """(address, problem) of every problem of a dataset, parsed once per version of its file
    (the look-ups of the web page and of the MCP tools come many to a file)."""
    path = dataset_path(source)
    return _indexed(str(path), path.stat().st_mtime_ns)


def search_problems(indexed: Iterable[tuple[str, Problem]], query: str,
                    split: str | None = None) -> list[tuple[str, Problem]]:
    """(address, problem) pairs whose address contains `query` (case-insensitive), then those
    whose statement does, each group in file order: a name is what people remember, the
    statement's text what they search when they do not."""
    needle = query.strip().lower()
    by_name, by_text = [], []
    for key, p in indexed:
        if split and p.split != split:
            continue
        if needle in key.lower():
            by_name.append((key, p))
        elif needle and needle in p.formal_statement.lower():
            by_text.append((key, p))
    return by_name + by_text


def find_problem(source: str | Path, name: str) -> Problem:
    """One problem by name (or NAME#K, see the module docstring)."""
    problems = load_problems(source)
    path = dataset_path(source)
    base, _, occurrence = name.partition("#")
    matches = [p for p in problems if p.name == base]
    if occurrence:
        if not occurrence.isdigit() or not 1 <= int(occurrence) <= len(matches):
            raise DatasetError(
                f"{path}: no problem {name!r}; {base!r} occurs {len(matches)} time(s)"
            )
        return matches[int(occurrence) - 1]
    if len(matches) == 1:
        return matches[0]
    if matches:
        keys = [k for k in problem_keys(problems) if k.partition("#")[0] == base]
        raise DatasetError(
            f"{path}: {len(matches)} problems are named {name!r} "
            f"(splits {', '.join(p.split for p in matches)}); pick one of {', '.join(keys)}"
        )
    close = difflib.get_close_matches(name, sorted({p.name for p in problems}), n=5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DatasetError(
        f"{path}: no problem named {name!r}; {hint}"
        f"the names are the \"name\" fields of its {len(problems)} lines"
    )
