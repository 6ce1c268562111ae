"""Resource limits of a REPL: kernel caps set as it starts, and a CPU budget per check.

The caps on processes and file size are kernel rlimits, set inside the sandbox by `prlimit` once
bubblewrap has given the REPL its own uid (or user namespace), so RLIMIT_NPROC counts the REPL's
processes and nothing else. The CPU budget cannot be a kernel rlimit: RLIMIT_CPU counts a
process's whole life while a REPL serves a thousand checks, and moving it before each check needs
CAP_SYS_RESOURCE over a process of another uid, which a service in a container lacks (and code
that can call setrlimit could lift a soft limit again). So the pool counts it: the CPU seconds of
the whole sandbox tree (forked children included) since the request began, sampled with the
memory cap, and it kills the sandbox past the budget, as it does past the wall-clock timeout.
"""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Caps:
    """The fixed caps of one REPL."""

    processes: int
    file_bytes: int

    def prlimit_argv(self, prlimit: str) -> list[str]:
        """`prlimit` options that set these caps (soft = hard) and exec the REPL."""
        return [
            prlimit, f"--nproc={self.processes}:{self.processes}",
            f"--fsize={self.file_bytes}:{self.file_bytes}", "--core=0:0", "--",
        ]

    def apply_here(self) -> None:
        """For an unsandboxed REPL (preexec): no core dumps and bounded files. No process cap:
        outside a user namespace RLIMIT_NPROC would count every process of the service's uid."""
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))


def _cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of a process and of its children that it has reaped."""
    t = proc.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


@dataclass(frozen=True)
class TreeUsage:
    """Resident memory and CPU seconds of a process tree (the sandbox, the REPL, its children)."""

    procs: tuple[psutil.Process, ...]
    rss_bytes: int
    cpu_s: float


def tree_usage(pid: int) -> TreeUsage:
    try:
        root = psutil.Process(pid)
        procs = (root, *root.children(recursive=True))
    except psutil.Error:
        return TreeUsage((), 0, 0.0)
    return _usage(procs, rss=True)


def _usage(procs: tuple[psutil.Process, ...], *, rss: bool) -> TreeUsage:
    total_rss, total_cpu = 0, 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total_cpu += _cpu_seconds(proc)
            if rss:
                total_rss += proc.memory_info().rss
    return TreeUsage(procs, total_rss, total_cpu)
