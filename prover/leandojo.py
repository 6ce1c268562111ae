"""LeanDojo theorems (a repository, a file, a full name) as problems, once their file is here.

LeanDojo identifies a theorem by repository URL, commit, file path and full name, and LeanDojo
Benchmark 4 adds where it starts and ends in the file. We need no tracing for that: with the
repository checked out at that commit, the file before the theorem is the context (header), the
declaration up to `:=` is the statement, and the theorem's own proof is dropped. Finding the
checkout is the only step that can fail, so every theorem that cannot become a problem comes back
with the reason, never silently dropped.

A checkout is found (in order) at the URL itself when it is a local directory, or under each
search root as a directory named like the repository (`mathlib4` for
`https://github.com/leanprover-community/mathlib4`); its `git rev-parse HEAD` must be the commit.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.datasets import DatasetError, Problem
from prover.lean.names import scan
from prover.lean.source import mask_comments_and_strings
from prover.problem_input import normalise_statement

PREFIX = "leandojo:"
_DECL = re.compile(r"\b(theorem|lemma)\s+(?P<name>[^\s(:{\[⦃]+)")


@dataclass(frozen=True)
class DojoTheorem:
    url: str
    commit: str
    file_path: str
    full_name: str
    start: tuple[int, int] | None = None  # (line, column) as LeanDojo gives them, 1-based lines
    end: tuple[int, int] | None = None

    @property
    def repo_name(self) -> str:
        return self.url.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Skipped:
    theorem: DojoTheorem
    reason: str


class TheoremNotFound(ValueError):
    """The file is there but the theorem cannot be located or read in it."""


def _pos(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        line, column = value
        if isinstance(line, int) and isinstance(column, int):
            return line, column
    return None


def read_benchmark(path: Path) -> list[DojoTheorem]:
    """LeanDojo Benchmark 4's JSON: a list of objects with url, commit, file_path, full_name,
    start and end (traced tactics and other fields are ignored)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read LeanDojo JSON ({exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: a LeanDojo benchmark file is a JSON list of theorems")
    out = []
    for i, row in enumerate(data):
        missing = [k for k in ("url", "commit", "file_path", "full_name")
                   if not isinstance(row, dict) or not isinstance(row.get(k), str)]
        if missing:
            raise DatasetError(f"{path}: theorem {i} lacks {', '.join(missing)}")
        out.append(DojoTheorem(row["url"], row["commit"], row["file_path"], row["full_name"],
                               _pos(row.get("start")), _pos(row.get("end"))))
    return out


def _head(directory: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_checkout(
    theorem: DojoTheorem, roots: Sequence[Path], heads: dict[Path, str | None] | None = None
) -> Path | str:
    """The local checkout of the theorem's repository at its commit, or why there is none.
    `heads` memoises `git rev-parse HEAD` across the theorems of one benchmark file."""
    heads = {} if heads is None else heads

    def head(directory: Path) -> str | None:
        key = directory.resolve()
        if key not in heads:
            heads[key] = _head(key)
        return heads[key]

    candidates = []
    if Path(theorem.url).is_dir():
        candidates.append(Path(theorem.url))
    candidates += [root / theorem.repo_name for root in roots]
    seen = [c for c in candidates if c.is_dir()]
    if not seen:
        where = ", ".join(str(r / theorem.repo_name) for r in roots) or "(no search root)"
        return (f"repository {theorem.url} is not checked out locally (looked in {where}); "
                f"clone it at commit {theorem.commit} there")
    for directory in seen:
        at = head(directory)
        if at is not None and (at == theorem.commit or at.startswith(theorem.commit)):
            return directory
    where = ", ".join(f"{d} is at {head(d) or 'no git commit'}" for d in seen)
    return f"repository {theorem.url} is checked out, but not at commit {theorem.commit} ({where})"


def _offset(text: str, line: int, column: int) -> int:
    starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
    if not 1 <= line <= len(starts):
        raise TheoremNotFound(f"line {line} is past the end of the file")
    return starts[line - 1] + max(column - 1, 0)


def _declaration_start(text: str, masked: str, theorem: DojoTheorem) -> int:
    short = theorem.full_name.rsplit(".", 1)[-1]
    names = {theorem.full_name, short}
    if theorem.start is not None:
        begin = _offset(text, theorem.start[0], 0)
        m = _DECL.search(masked, begin)
        if m is not None and m.group("name").rsplit(".", 1)[-1] == short:
            return m.start()
    exact = [d.offset for d in scan(text).declared if d.name == theorem.full_name]
    if exact:  # by its full name, namespaces followed (a top-level `t` is not `Foo.t`)
        return exact[-1]
    found = [m for m in _DECL.finditer(masked)
             if m.group("name") in names or theorem.full_name.endswith("." + m.group("name"))]
    if not found:
        raise TheoremNotFound(f"no `theorem`/`lemma` named {theorem.full_name} in the file")
    return found[-1].start()


def _top_level_assign(masked: str, start: int) -> int:
    depth = 0
    for i in range(start, len(masked) - 1):
        c = masked[i]
        if c in "([{⟨⦃":
            depth += 1
        elif c in ")]}⟩⦄":
            depth = max(depth - 1, 0)
        elif depth == 0 and masked.startswith(":=", i):
            return i
    raise TheoremNotFound("the theorem has no `:=` (a `|` pattern-matching proof is not handled)")


def theorem_problem(theorem: DojoTheorem, checkout: Path, split: str = "") -> Problem:
    """The problem: the file up to the theorem as its header, the declaration as the statement."""
    path = checkout / theorem.file_path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TheoremNotFound(f"cannot read {path}: {exc}") from None
    masked = mask_comments_and_strings(text)
    start = _declaration_start(text, masked, theorem)
    assign = _top_level_assign(masked, start)
    line_start = text.rfind("\n", 0, start) + 1
    prefix = text[line_start:start]  # `@[simp] ` or `protected ` before the keyword
    statement = normalise_statement(prefix + text[start:assign])
    return Problem(name=theorem.full_name, split=split, header=text[:line_start],
                   informal_prefix="", formal_statement=statement)


def problems(
    theorems: Iterable[DojoTheorem], roots: Sequence[Path], split: str = ""
) -> tuple[list[Problem], list[Skipped]]:
    """Each theorem as a problem, or as a skipped one with the reason."""
    found: list[Problem] = []
    skipped: list[Skipped] = []
    heads: dict[Path, str | None] = {}
    for theorem in theorems:
        checkout = find_checkout(theorem, roots, heads)
        if isinstance(checkout, str):
            skipped.append(Skipped(theorem, checkout))
            continue
        try:
            found.append(theorem_problem(theorem, checkout, split))
        except (TheoremNotFound, ValueError) as exc:
            skipped.append(Skipped(theorem, f"{theorem.file_path}: {exc}"))
    return found, skipped


def benchmark_roots(path: Path) -> list[Path]:
    """Where `--dataset leandojo:PATH` looks for checkouts: beside the JSON file, one level up
    (LeanDojo's `random/test.json` layout), and the working directory."""
    here = path.resolve().parent
    return list(dict.fromkeys([here, here.parent, Path.cwd()]))


def load_benchmark(source: str) -> tuple[list[Problem], list[Skipped]]:
    """`leandojo:PATH` -> the problems whose repositories are checked out, and the skipped.
    Their split is the file's name (`test` for LeanDojo's `random/test.json`)."""
    path = Path(source.removeprefix(PREFIX)).expanduser()
    return problems(read_benchmark(path), benchmark_roots(path), split=path.stem)
