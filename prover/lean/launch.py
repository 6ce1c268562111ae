"""How a REPL worker is started: which command, in which environment, inside which sandbox.

Proofs are untrusted code: `#eval`, `run_cmd` and friends run with the REPL's privileges. So each
worker runs under bubblewrap when it can apply every restriction (prover/lean/sandbox.py: only the
REPL's own files, an unprivileged uid, no network, its own PID namespace, capped processes, files
and /tmp), with an environment rebuilt from scratch so API keys never reach Lean. Without
bubblewrap (PROVER_LEAN_SANDBOX=auto) we still clear the environment and set rlimits, and say
loudly which protections are missing; PROVER_LEAN_SANDBOX=bwrap refuses to start instead.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prover.config import Settings
from prover.lean.limits import Caps
from prover.lean.sandbox import Sandbox, SandboxError, build_sandbox

log = logging.getLogger(__name__)

# Variables a REPL legitimately needs; everything else is dropped.
_PASS_PREFIXES = ("LEAN_", "LAKE", "ELAN")
_PASS_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
REPL_BINARY = Path(".lake/packages/REPL/.lake/build/bin/repl")


class LeanSetupError(RuntimeError):
    """The REPL cannot be started as configured; the message says how to fix it."""


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]  # the REPL command itself
    cwd: Path
    env: Mapping[str, str]
    sandboxed: bool
    preexec: Callable[[], None] | None = None
    sandbox: Sandbox | None = None

    def spawn_argv(self) -> tuple[str, ...]:
        """The command line of one new process: the REPL command inside its sandbox, if any."""
        return self.sandbox.argv(self.argv) if self.sandbox is not None else self.argv


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


@functools.lru_cache(maxsize=8)
def sandbox_problem(settings: Settings | None = None) -> str | None:
    """Why bubblewrap cannot apply every restriction here (naming the first that fails), or None.

    Probed with a do-nothing command under the configured caps, so the answer does not depend on
    the REPL command."""
    settings = settings or Settings()
    try:
        sandbox = build_sandbox(settings, ["true"], Path("/usr/lib"), {}, {})
        sandbox.probe()
    except SandboxError as exc:
        return str(exc)
    return None


def bwrap_works() -> bool:
    """bubblewrap can be installed yet unusable (no user namespaces in some containers)."""
    return sandbox_problem() is None


_warned = False

UNSANDBOXED_GAPS = (
    "the host's files (anything this user can read, e.g. configuration and keys)",
    "the network", "the host's processes (no PID namespace)",
    "a private /tmp (files go to the host's)", "a cap on processes (fork bombs)",
    "leftover daemons (a double fork escapes the kill)",
)


def _warn_unsandboxed(reason: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    log.warning(
        "Lean workers run WITHOUT a sandbox (%s). A proof's code is then only kept to a cleared "
        "environment, a file-size cap, no core dumps and a CPU budget per check; it can reach %s. "
        "Install bubblewrap with user namespaces allowed, and set PROVER_LEAN_SANDBOX=bwrap to "
        "refuse to start without it (docs/security.md).",
        reason, "; ".join(UNSANDBOXED_GAPS),
    )


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
    caps = Caps(settings.lean_processes, settings.lean_file_mb * 2**20)
    problem = None if mode == "none" else sandbox_problem(_probe_key(settings))
    if mode == "bwrap" and problem is not None:
        raise LeanSetupError(
            f"PROVER_LEAN_SANDBOX=bwrap but the sandbox cannot be built here: {problem}. Allow "
            "user namespaces (docs/deployment.md, \"Sandbox\"), or set PROVER_LEAN_SANDBOX=auto "
            "to run without it"
        )
    if mode != "none" and problem is None:
        try:
            sandbox = build_sandbox(settings, argv, cwd, env, extra)
        except SandboxError as exc:
            raise LeanSetupError(str(exc)) from exc
        return Launch(tuple(argv), cwd, env, sandboxed=True, sandbox=sandbox)
    _warn_unsandboxed("PROVER_LEAN_SANDBOX=none" if mode == "none" else str(problem))
    return Launch(tuple(argv), cwd, env, sandboxed=False, preexec=caps.apply_here)


def _probe_key(settings: Settings) -> Settings:
    """The settings the probe depends on, so that its answer is cached across pools."""
    return Settings().with_overrides(
        lean_tmp_mb=settings.lean_tmp_mb, lean_file_mb=settings.lean_file_mb,
        lean_processes=settings.lean_processes, lean_sandbox_uid=settings.lean_sandbox_uid,
    )
