"""How a REPL worker is started: which command, in which environment, inside which sandbox.

Proofs are untrusted code: `#eval`, `run_cmd` and friends run with the REPL's privileges. So each
worker runs under bubblewrap when it is available: no network, the whole file system read-only
except a private /tmp, a fresh PID namespace (killing the sandbox kills everything in it), and an
environment rebuilt from scratch so API keys and service settings never reach Lean. Without
bubblewrap we still clear the environment and set rlimits, and say loudly that this is weaker.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prover.config import Settings

log = logging.getLogger(__name__)

# Variables a REPL legitimately needs; everything else is dropped.
_PASS_PREFIXES = ("LEAN_", "LAKE", "ELAN")
_PASS_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
REPL_BINARY = Path(".lake/packages/REPL/.lake/build/bin/repl")


class LeanSetupError(RuntimeError):
    """The REPL cannot be started as configured; the message says how to fix it."""


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    sandboxed: bool
    preexec: Callable[[], None] | None = None


def _filtered_env(source: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in source.items() if k in _PASS_NAMES or k.startswith(_PASS_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = "/tmp"
    env["TMPDIR"] = "/tmp"
    return env


@functools.lru_cache(maxsize=4)
def _lake_environment(workspace: Path) -> tuple[tuple[str, str], ...]:
    """`lake env printenv`, resolved once: `lake env` re-reads the workspace on every launch."""
    lake = shutil.which("lake") or str(Path.home() / ".elan/bin/lake")
    if not Path(lake).exists():
        raise LeanSetupError(
            "no Lean toolchain found (lake is not on PATH): run `make lean` on a connected "
            "machine, or set PROVER_LEAN_REPL_CMD to a command that starts a Lean REPL"
        )
    try:
        out = subprocess.run(
            [lake, "env", "printenv"], cwd=workspace, capture_output=True, text=True,
            timeout=300, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise LeanSetupError(
            f"`lake env` failed in {workspace}: {exc}; run `make lean` to build the workspace"
        ) from exc
    pairs = []
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            pairs.append((key, value))
    return tuple(pairs)


def repl_command(settings: Settings) -> tuple[tuple[str, ...], dict[str, str]]:
    """The argv that starts one REPL, and the extra variables it needs."""
    if settings.lean_repl_cmd:
        return settings.lean_repl_cmd, {}
    workspace = settings.lean_workspace
    binary = workspace / REPL_BINARY
    if not binary.exists():
        raise LeanSetupError(
            f"the Lean REPL is not built ({binary} is missing): run `make lean` on a connected "
            "machine, or set PROVER_LEAN_REPL_CMD"
        )
    lake_env = dict(_lake_environment(workspace))
    if "LEAN_SYSROOT" not in lake_env or "LEAN_PATH" not in lake_env:
        raise LeanSetupError("`lake env` did not set LEAN_SYSROOT and LEAN_PATH; rerun `make lean`")
    return (str(binary),), lake_env


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """bubblewrap can be installed yet unusable (no user namespaces in some containers)."""
    path = bwrap_path()
    if path is None:
        return False
    try:
        done = subprocess.run(
            [path, *_bwrap_flags(Path("/")), "--", "/bin/true"],
            capture_output=True, timeout=20,
        )
    except (subprocess.SubprocessError, OSError):
        return False
    return done.returncode == 0


def _paths_under_tmp(paths: list[str]) -> list[str]:
    """Top-level /tmp entries holding anything the REPL needs (a checkout under /tmp, say).

    The sandbox mounts a fresh tmpfs over /tmp, which would hide them; they are bound back
    read-only, and the rest of /tmp stays private.
    """
    tops: dict[str, None] = {}
    for raw in paths:
        for part in raw.split(":"):
            p = Path(part)
            if p.is_absolute() and len(p.parts) > 2 and p.parts[1] == "tmp":
                top = Path("/tmp", p.parts[2])
                if top.exists():
                    tops[str(top)] = None
    return list(tops)


def _bwrap_flags(cwd: Path, needed: list[str] | None = None) -> list[str]:
    flags = [
        "--die-with-parent",
        "--unshare-all",  # network, pid, ipc, uts, cgroup (and user when possible)
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
    ]
    for top in _paths_under_tmp([str(cwd), *(needed or [])]):
        flags += ["--ro-bind", top, top]
    return [*flags, "--chdir", str(cwd), "--clearenv"]


def _rlimits() -> None:
    """Fallback hardening for unsandboxed workers: no core dumps, bounded file sizes."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**30, 2**30))


_warned = False


def build_launch(settings: Settings, base_env: Mapping[str, str] | None = None) -> Launch:
    argv, extra = repl_command(settings)
    env = _filtered_env(os.environ if base_env is None else base_env)
    env.update(extra)
    cwd = settings.lean_workspace
    if not cwd.is_dir():
        raise LeanSetupError(
            f"PROVER_LEAN_WORKSPACE={cwd} is not a directory; point it at the Lake project"
        )
    mode = settings.lean_sandbox
    use_bwrap = mode == "bwrap" or (mode == "auto" and bwrap_works())
    if mode == "bwrap" and not bwrap_works():
        raise LeanSetupError(
            "PROVER_LEAN_SANDBOX=bwrap but bubblewrap is missing or unusable here "
            "(install the `bubblewrap` package, or set PROVER_LEAN_SANDBOX=none)"
        )
    if use_bwrap:
        path = bwrap_path()
        assert path is not None
        needed = [*argv, env.get("LEAN_PATH", ""), env.get("LEAN_SYSROOT", "")]
        wrapped = [path, *_bwrap_flags(cwd, needed)]
        for key, value in sorted(env.items()):
            wrapped += ["--setenv", key, value]
        return Launch((*wrapped, "--", *argv), cwd, env, sandboxed=True)
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "Lean workers run WITHOUT a sandbox (%s): proofs can read files, use the network "
            "and run programs as this user. Install bubblewrap to isolate them.",
            "PROVER_LEAN_SANDBOX=none" if mode == "none" else "bubblewrap not usable",
        )
    return Launch(tuple(argv), cwd, env, sandboxed=False, preexec=_rlimits)
