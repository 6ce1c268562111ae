"""The output directory of an evaluation: config.json, results.jsonl, checkpoints/.

results.jsonl is append-only, one line per finished (problem, run), fsynced as it is written: a
run killed at any moment loses at most the searches in flight (whose RMaxTS trees are in
checkpoints/), never a finished result, and a line half-written by the kill is cut off on the
next start instead of poisoning the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prover.evaluation.plan import EvalSpec

RESULTS, CONFIG, SUMMARY = "results.jsonl", "config.json", "summary.json"


class EvalDirError(RuntimeError):
    """The output directory belongs to another evaluation or is damaged; says what to do."""


class ResultStore:
    def __init__(self, out: Path, spec: EvalSpec) -> None:
        self.out = out
        self.spec = spec
        self.results_path = out / RESULTS
        self.results: list[dict[str, Any]] = []
        self._file: Any = None

    def open(self) -> ResultStore:
        self.out.mkdir(parents=True, exist_ok=True)
        config = self.out / CONFIG
        wanted = self.spec.to_json()
        if config.exists():
            saved = json.loads(config.read_text(encoding="utf-8"))
            # A setting added after the directory was written had its default value then
            # (profile deepseek-v1.5, ...); lean_env excepted: such a directory ran in the one
            # environment there was, so it resumes in whichever is asked for now.
            defaults = {**EvalSpec(dataset=self.spec.dataset).to_json(),
                        "lean_env": wanted.get("lean_env")}
            saved = {k: saved.get(k, defaults.get(k)) for k in wanted}
            differing = sorted(k for k in wanted if saved[k] != wanted[k])
            if differing:
                detail = ", ".join(f"{k}: {saved[k]!r} there, {wanted[k]!r} now"
                                   for k in differing)
                raise EvalDirError(
                    f"{self.out} holds an evaluation with other settings ({detail}); "
                    "use another --out directory, or the same settings to resume it"
                )
        else:
            config.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        self.results = self._load()
        self._file = self.results_path.open("a", encoding="utf-8")
        return self

    def _load(self) -> list[dict[str, Any]]:
        if not self.results_path.exists():
            return []
        data = self.results_path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):  # a line cut by a kill: drop it, its search will be redone
            with self.results_path.open("r+b") as f:
                f.truncate(good_end)
            data = data[:good_end]
        rows = []
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvalDirError(f"{self.results_path}:{number}: not valid JSON ({exc.msg}); "
                                   "fix or delete that line to resume") from None
        return rows

    def done(self) -> set[tuple[str, int]]:
        return {(r["key"], int(r["run"])) for r in self.results}

    def append(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.results.append(row)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
