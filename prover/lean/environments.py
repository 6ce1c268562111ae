"""Several named Lean environments in one process, each a Lake workspace with its own pins.

A proof written against one Mathlib often fails on another, and provers and benchmarks each pin
their own Lean (DeepSeek-Prover 4.9, Kimina 4.15, PutnamBench 4.27, ...). So a service can hold
several environments (`PROVER_LEAN_ENVS`), each with a `LeanPool` of its own: a REPL belongs to
one workspace, so workers are keyed by environment first (one pool each) and by header within
the pool, as before. Without `PROVER_LEAN_ENVS` the one workspace of `PROVER_LEAN_WORKSPACE` is
the only environment, named after its toolchain (`v4_9` for the shipped one).

Every entry point that takes a `lean_env` resolves it here: `pool_for(name)` (or `select` for a
command that needs one environment only) raises `UnknownEnvironment`, whose message lists the
known names; the API turns it into a 422, the CLI into exit code 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from prover.config import LeanEnvSpec, Settings
from prover.lean.pool import LeanPool
from prover.lean.results import ResultCache

DEFAULT_ALIAS = "default"  # always names the default environment
_TOOLCHAIN_VERSION = re.compile(r"v(\d+)\.(\d+)")


class UnknownEnvironment(ValueError):
    """A request named a Lean environment this process does not have."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown Lean environment {name!r}: known environments are {', '.join(known)} "
            f"(or {DEFAULT_ALIAS!r}); they are configured by PROVER_LEAN_ENVS"
        )


@dataclass(frozen=True)
class LeanEnvironment:
    name: str
    settings: Settings  # the process's settings with this environment's workspace and REPL
    workers: int
    lean_version: str | None  # e.g. "4.9.0-rc1"
    mathlib_version: str | None  # Mathlib's commit

    def describe(self, default: str) -> dict[str, Any]:
        return {"name": self.name, "lean_version": self.lean_version,
                "mathlib_version": self.mathlib_version,
                "workspace": str(self.settings.lean_workspace), "workers": self.workers,
                "default": self.name == default}


def _pins(workspace: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (workspace / "versions.env").read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.lstrip().startswith("#"):
                pins[key.strip()] = value.strip()
    return pins


def _toolchain(workspace: Path) -> str:
    pinned = _pins(workspace).get("LEAN_TOOLCHAIN")
    if pinned:
        return pinned
    with contextlib.suppress(OSError):
        return (workspace / "lean-toolchain").read_text(encoding="utf-8").strip()
    return ""


@functools.lru_cache(maxsize=32)
def workspace_versions(workspace: Path) -> dict[str, str | None]:
    """A workspace's Lean and Mathlib: its `versions.env` pins, else `lean-toolchain` and the
    Mathlib revision of `lake-manifest.json`."""
    lean = _toolchain(workspace).rpartition(":")[2].removeprefix("v") or None
    mathlib = _pins(workspace).get("MATHLIB_REV") or None
    if mathlib is None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            manifest = json.loads((workspace / "lake-manifest.json").read_text(encoding="utf-8"))
            mathlib = next((p.get("rev") for p in manifest["packages"]
                            if p.get("name") == "mathlib"), None)
    return {"lean_version": lean, "mathlib_version": mathlib}


def implicit_name(workspace: Path) -> str:
    """The name of the single environment when PROVER_LEAN_ENVS is unset: `vMAJOR_MINOR` of its
    toolchain (`v4_9` for lean_workspace/), so a dataset that targets `v4_9` finds it; `default`
    when the workspace names no toolchain."""
    found = _TOOLCHAIN_VERSION.search(_toolchain(workspace))
    return f"v{found.group(1)}_{found.group(2)}" if found else DEFAULT_ALIAS


def _environment(settings: Settings, spec: LeanEnvSpec | None) -> LeanEnvironment:
    if spec is None:
        workspace = settings.lean_workspace
        own = settings
        name = implicit_name(workspace)
    else:
        workspace = spec.workspace
        # The global PROVER_LEAN_REPL_CMD belongs to the default workspace, not to these.
        own = settings.with_overrides(lean_workspace=workspace, lean_repl_cmd=spec.repl_cmd,
                                      lean_workers=spec.workers or settings.lean_workers)
        name = spec.name
    versions = workspace_versions(workspace)
    return LeanEnvironment(name, own, own.lean_workers, versions["lean_version"],
                           versions["mathlib_version"])


def environments_of(settings: Settings) -> tuple[LeanEnvironment, ...]:
    if not settings.lean_envs:
        return (_environment(settings, None),)
    return tuple(_environment(settings, spec) for spec in settings.lean_envs)


def default_name(settings: Settings) -> str:
    if settings.lean_envs:
        return settings.lean_default_env or settings.lean_envs[0].name
    return implicit_name(settings.lean_workspace)


def environment_names(settings: Settings) -> list[str]:
    if settings.lean_envs:
        return [e.name for e in settings.lean_envs]
    return [implicit_name(settings.lean_workspace)]


def resolve_name(settings: Settings, name: str | None) -> str:
    """The environment `name` means (None and `default`: the default one), or UnknownEnvironment."""
    if name is None or name == DEFAULT_ALIAS:
        return default_name(settings)
    known = environment_names(settings)
    if name not in known:
        raise UnknownEnvironment(name, known)
    return name


def environment(settings: Settings, name: str | None = None) -> LeanEnvironment:
    """One environment of `settings`, without starting anything."""
    chosen = resolve_name(settings, name)
    return next(e for e in environments_of(settings) if e.name == chosen)


def select(settings: Settings, name: str | None) -> Settings:
    """`settings` narrowed to one environment, made the default: for a command (verify, prove,
    eval) that checks in one environment and should not start REPLs for the others."""
    chosen = resolve_name(settings, name)
    if not settings.lean_envs:
        return settings
    spec = next(s for s in settings.lean_envs if s.name == chosen)
    return settings.with_overrides(lean_envs=(spec,), lean_default_env=chosen)


class LeanEnvironments:
    """One `LeanPool` per environment, started and closed together.

    `pools` supplies ready-made pools by environment name (tests, callers that own a pool);
    the others are built from the settings, each with `cache(environment's settings)` as its
    results cache (None: the pool's own in-memory one). Verdicts never cross environments: the
    pool keys them by its environment's workspace, REPL command and pins
    (prover/lean/results.py). `pool_for(name)` is the one way to get the pool a request's
    `lean_env` names."""

    def __init__(self, settings: Settings, pools: Mapping[str, LeanPool] | None = None, *,
                 cache: Callable[[Settings], ResultCache | None] | None = None) -> None:
        self.settings = settings
        self.default = default_name(settings)
        self.environments = {e.name: e for e in environments_of(settings)}
        given = dict(pools or {})
        stray = sorted(set(given) - set(self.environments))
        if stray:
            raise UnknownEnvironment(stray[0], list(self.environments))
        self._given = set(given)
        self._pools = {
            name: given.get(name) or LeanPool(
                env.settings, workers=env.workers,
                cache=cache(env.settings) if cache is not None else None)
            for name, env in self.environments.items()
        }

    @classmethod
    def around(cls, settings: Settings, pool: LeanPool, *,
               cache: Callable[[Settings], ResultCache | None] | None = None
               ) -> LeanEnvironments:
        """The environments of `settings` with `pool` as the default one's pool."""
        return cls(settings, {default_name(settings): pool}, cache=cache)

    @property
    def names(self) -> list[str]:
        return list(self.environments)

    def resolve(self, name: str | None) -> LeanEnvironment:
        return self.environments[resolve_name(self.settings, name)]

    def pool_for(self, name: str | None = None) -> LeanPool:
        """The pool of environment `name` (None or `default`: the default environment's).
        Raises UnknownEnvironment, naming the known environments."""
        return self._pools[self.resolve(name).name]

    def pools(self) -> dict[str, LeanPool]:
        return dict(self._pools)

    def _chosen(self, given: bool) -> list[LeanPool]:
        return [p for n, p in self._pools.items() if given or n not in self._given]

    async def start(self, *, eager: bool = True, given: bool = True) -> LeanEnvironments:
        """Start the pools; with `given=False` only those built here (a caller that passed
        pools in starts and closes them itself)."""
        pools = self._chosen(given)
        results = await asyncio.gather(*(p.start(eager=eager) for p in pools),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close(given=given)
            raise errors[0]
        return self

    async def close(self, *, given: bool = True) -> None:
        await asyncio.gather(*(p.close() for p in self._chosen(given)), return_exceptions=True)

    async def __aenter__(self) -> LeanEnvironments:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def size(self) -> int:
        """REPL workers over all environments."""
        return sum(p.size for p in self._pools.values())

    def describe(self) -> list[dict[str, Any]]:
        """Each environment's name, Lean, Mathlib, workspace, workers, and which is default."""
        return [env.describe(self.default) for env in self.environments.values()]

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: pool.stats() for name, pool in self._pools.items()}

    def total_stats(self) -> dict[str, Any]:
        """`LeanPool.stats()` summed over the environments (what /metrics reports)."""
        total: dict[str, Any] = {"verdicts": {}, "pids": []}
        for stats in self.stats().values():
            for key, value in stats.items():
                if key == "verdicts":
                    for verdict, n in value.items():
                        total["verdicts"][verdict] = total["verdicts"].get(verdict, 0) + n
                elif key == "pids":
                    total["pids"] += value
                else:
                    total[key] = total.get(key, 0) + value
        return total
