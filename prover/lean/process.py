"""One REPL process: spawn it, exchange one request at a time, and kill it without leftovers.

The REPL has no request ids, no cancellation and no timeout of its own, so the only safe reaction
to anything unexpected (a late answer, EOF, non-JSON output, memory past the cap) is to kill the
whole process group and start over. Every failure is raised as a `ReplFailure` subclass carrying
the stderr tail, so the pool can turn it into `timeout` or `system_error` for exactly the request
that was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from prover.lean import protocol
from prover.lean.limits import tree_usage

STREAM_LIMIT = 256 * 1024 * 1024  # one response line may hold a whole info tree
MEMORY_SAMPLE_S = 0.25


class ReplFailure(Exception):
    """The process can no longer be trusted; the caller must discard it."""

    def __init__(self, reason: str, stderr_tail: str = "") -> None:
        self.reason = reason
        self.stderr_tail = stderr_tail
        tail = stderr_tail.strip()[-800:]
        super().__init__(f"{reason}; stderr: {tail}" if tail else reason)


class ReplTimeout(ReplFailure):
    pass


class ReplCrashed(ReplFailure):
    pass


class ReplGarbage(ReplFailure):
    pass


class ReplOutOfMemory(ReplFailure):
    pass


class ReplStartError(ReplFailure):
    pass


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (the sandbox wraps the REPL)."""
    return tree_usage(pid).rss_bytes


def _seal_inherited_fds() -> None:
    """Mark every descriptor of this process above stderr close-on-exec before a spawn.

    The stdlib's subprocess closes them in the child (close_fds), but uvloop, which uvicorn picks
    when it is installed, ignores close_fds: a descriptor the service inherited without
    close-on-exec (a supervisor's pipe, a socket passed by whatever started it) would otherwise
    reach the REPL, through bubblewrap too, and hand a proof's code a channel out of the sandbox.
    """
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    with contextlib.suppress(OSError):
        for name in os.listdir(fd_dir):
            fd = int(name)
            if fd > 2:
                with contextlib.suppress(OSError):  # the listing's own descriptor, now closed
                    if os.get_inheritable(fd):
                        os.set_inheritable(fd, False)


class ReplProcess:
    def __init__(self, proc: asyncio.subprocess.Process, argv: Sequence[str]) -> None:
        self._proc = proc
        self.argv = tuple(argv)
        self._stderr: deque[str] = deque(maxlen=40)
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())
        self.requests = 0
        self.started_at = time.monotonic()

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        preexec: Callable[[], None] | None = None,
    ) -> ReplProcess:
        _seal_inherited_fds()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                preexec_fn=preexec,
                limit=STREAM_LIMIT,
            )
        except (OSError, ValueError) as exc:
            raise ReplStartError(
                f"cannot start the REPL command {' '.join(argv)!r} (PROVER_LEAN_REPL_CMD): {exc}"
            ) from exc
        return cls(proc, argv)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def rss_bytes(self) -> int:
        return tree_rss_bytes(self._proc.pid) if self.alive else 0

    async def _drain_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            self._stderr.append(line.decode("utf-8", "replace"))

    async def _read_response(self) -> str:
        stream = self._proc.stdout
        assert stream is not None
        lines: list[str] = []
        while True:
            raw = await stream.readline()
            if not raw:
                raise ReplCrashed(await self._death_reason(), self.stderr_tail())
            line = raw.decode("utf-8", "replace")
            if line.strip() == "":
                if lines:
                    return "".join(lines)
                continue  # stray blank line between responses
            lines.append(line)

    async def _death_reason(self) -> str:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait(), 2.0)
        await self._flush_stderr()
        code = self._proc.returncode
        if code is None:
            return "REPL closed its output but did not exit"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f"REPL died from signal {name}"
        return f"REPL exited with status {code}"

    async def _flush_stderr(self) -> None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5)

    async def _watch_resources(self, cap_bytes: int | None, cpu_budget_s: float | None) -> None:
        """Sample the process tree: kill past the memory cap or past this request's CPU budget
        (prover/lean/limits.py says why the pool, not the kernel, counts CPU per check). CPU is
        counted from the first sample on: a request that ends sooner costs no process walk, and
        the first quarter second is nothing next to a budget."""
        cpu_before: float | None = None
        while True:
            await asyncio.sleep(MEMORY_SAMPLE_S)
            usage = await asyncio.to_thread(tree_usage, self._proc.pid)
            rss = usage.rss_bytes
            if cap_bytes is not None and rss > cap_bytes:
                raise ReplOutOfMemory(
                    f"REPL exceeded its memory cap ({rss // 2**20} MB > {cap_bytes // 2**20} MB; "
                    "raise PROVER_LEAN_MEMORY_MB if the machine has room)"
                )
            if cpu_before is None:
                cpu_before = usage.cpu_s
            used = usage.cpu_s - cpu_before
            if cpu_budget_s is not None and used > cpu_budget_s:
                raise ReplTimeout(
                    f"Lean used {used:.0f} CPU seconds, past this request's budget of "
                    f"{cpu_budget_s:g} (PROVER_LEAN_CPU_S)"
                )

    async def request(
        self, request: protocol.JsonObj, timeout: float, memory_cap_bytes: int | None = None,
        cpu_budget_s: float | None = None,
    ) -> protocol.Response:
        """Send one request and wait for its response, killing the process on any failure."""
        if not self.alive:
            raise ReplCrashed(await self._death_reason(), self.stderr_tail())
        stdin = self._proc.stdin
        assert stdin is not None
        self.requests += 1
        try:
            stdin.write(protocol.encode(request))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self.kill()
            raise ReplCrashed(
                f"REPL stopped reading its input ({exc})", self.stderr_tail()
            ) from exc
        try:
            text = await self._bounded_read(timeout, memory_cap_bytes, cpu_budget_s)
            return protocol.decode(text)
        except protocol.ProtocolError as exc:
            await self.kill()
            raise ReplGarbage(str(exc), self.stderr_tail()) from exc
        except ReplFailure:
            await self.kill()
            raise
        except BaseException:
            await self.kill()  # cancelled mid-request: the answer would arrive out of step
            raise

    async def _bounded_read(
        self, timeout: float, memory_cap_bytes: int | None, cpu_budget_s: float | None
    ) -> str:
        read = asyncio.ensure_future(self._read_response())
        watch = (
            asyncio.ensure_future(self._watch_resources(memory_cap_bytes, cpu_budget_s))
            if memory_cap_bytes or cpu_budget_s
            else None
        )
        waiting = {read} if watch is None else {read, watch}
        try:
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for task in waiting:
                if not task.done():
                    task.cancel()
            for task in waiting:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if read in done:
            return read.result()
        if watch is not None and watch in done:
            watch.result()  # raises ReplOutOfMemory or ReplTimeout
        raise ReplTimeout(f"no answer within {timeout:g} s", self.stderr_tail())

    async def kill(self) -> None:
        """SIGKILL the process group and every descendant; reap the process."""
        pid = self._proc.pid
        descendants: list[psutil.Process] = []
        if self._proc.returncode is None:
            with contextlib.suppress(psutil.Error):
                descendants = psutil.Process(pid).children(recursive=True)
        # The group outlives its leader while any member lives, so kill it even after an exit.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait(), 5.0)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        await self._flush_stderr()
        if not self._stderr_task.done():
            self._stderr_task.cancel()

    async def close(self, grace_s: float = 2.0) -> None:
        """Close stdin (the REPL exits at EOF), then kill whatever is left."""
        if self._proc.returncode is None and self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), grace_s)
        await self.kill()
