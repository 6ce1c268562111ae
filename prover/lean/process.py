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
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


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

    async def _watch_memory(self, cap_bytes: int) -> None:
        while True:
            await asyncio.sleep(MEMORY_SAMPLE_S)
            rss = await asyncio.to_thread(self.rss_bytes)
            if rss > cap_bytes:
                raise ReplOutOfMemory(
                    f"REPL exceeded its memory cap ({rss // 2**20} MB > {cap_bytes // 2**20} MB; "
                    "raise PROVER_LEAN_MEMORY_MB if the machine has room)"
                )

    async def request(
        self, request: protocol.JsonObj, timeout: float, memory_cap_bytes: int | None = None
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
            text = await self._bounded_read(timeout, memory_cap_bytes)
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

    async def _bounded_read(self, timeout: float, memory_cap_bytes: int | None) -> str:
        read = asyncio.ensure_future(self._read_response())
        watch = (
            asyncio.ensure_future(self._watch_memory(memory_cap_bytes))
            if memory_cap_bytes
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
            watch.result()  # raises ReplOutOfMemory
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
