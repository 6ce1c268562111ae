"""Verdicts remembered by everything that decides them, so a resubmitted proof is not rechecked.

RL training resubmits the same samples over and over. A verdict is a function of the code, the
statement, the Lean environment (workspace, REPL command, toolchain and package pins) and the
checker's own rules (its version and the `native_decide` policy), so those are what the key is
made of; the timeout is not, because only definitive verdicts are kept: `proved`, `failed`,
`incomplete`, `rejected`. A timeout or a system error says nothing about the proof and is always
rechecked. The pool takes any `ResultCache`; the in-memory LRU here serves one process, and
server/result_cache.py shares verdicts through Redis between every API process and worker.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from prover.config import Settings
from prover.lean.verdict import CheckResult, Verdict

# Bump whenever a change to the checker can change a verdict: old entries then stop matching.
CHECKER_VERSION = "fused-2"
DEFINITIVE = frozenset({Verdict.PROVED, Verdict.FAILED, Verdict.INCOMPLETE, Verdict.REJECTED})
# Files of a Lean workspace that pin what `import` brings in.
PIN_FILES = ("lean-toolchain", "lake-manifest.json", "lakefile.lean", "lakefile.toml")


class ResultCache(Protocol):
    """Where definitive verdicts are kept. Implementations may fail (a network store); the
    pool treats a failure as a miss and never as a verdict."""

    async def get(self, key: str) -> CheckResult | None: ...

    async def put(self, key: str, result: CheckResult) -> None: ...

    async def close(self) -> None: ...


class MemoryResultCache:
    """A bounded LRU in this process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, CheckResult] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> CheckResult | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    async def put(self, key: str, result: CheckResult) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    async def close(self) -> None:
        self._items.clear()


def environment_identity(settings: Settings) -> str:
    """What makes two pools' Lean environments the same: workspace, REPL command and pins."""
    h = hashlib.sha256()
    h.update(json.dumps([str(settings.lean_workspace), list(settings.lean_repl_cmd or ())])
             .encode())
    for name in PIN_FILES:
        path = Path(settings.lean_workspace) / name
        h.update(b"\0" + name.encode() + b"\0")
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def result_key(
    environment: str, code: str, statement: str | None, *, allow_native_decide: bool,
    context: str | None = None,
) -> str:
    """The cache key of one check; anything that can change its verdict is in it."""
    material = json.dumps(
        [CHECKER_VERSION, environment, code, statement, allow_native_decide, context],
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()
