"""A live REPL process together with the environments it has already built.

Importing Mathlib takes seconds to minutes and gigabytes, so a session keeps the env ids of the
headers it has elaborated in a small LRU table; the pool routes each
check to a session that already holds its header. Env ids die with the process, so every table is
dropped whenever the process is.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from prover.config import Settings
from prover.lean import protocol
from prover.lean.launch import Launch
from prover.lean.process import ReplProcess, ReplStartError
from prover.lean.source import HeaderKey, SplitSource

log = logging.getLogger(__name__)

STARTUP_PROBE_S = 60.0
RSS_SAMPLE_INTERVAL_S = 1.0  # measuring RSS walks the process table: not after every check
_PROBE_ENV = 2**30  # no REPL has that many envs; the answer must be "Unknown environment."


@dataclass(frozen=True)
class EnvFailure:
    """Elaborating a header or reference statement produced errors."""

    messages: tuple[protocol.Message, ...]
    line_offset: int


class _Lru:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> int | None:
        env = self._items.get(key)
        if env is not None:
            self._items.move_to_end(key)
        return env

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def put(self, key: Hashable, env: int) -> None:
        self._items[key] = env
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class ReplSession:
    def __init__(self, launch: Launch, settings: Settings, name: str) -> None:
        self.launch = launch
        self.settings = settings
        self.name = name
        self.proc: ReplProcess | None = None
        self.headers = _Lru(settings.lean_header_cache)
        self.checks = 0
        self.restarts = 0
        self.recycles = 0
        self._rss_sampled_at = 0.0
        self.header_elaborations = 0
        # Unguessable, so a proof cannot refer to the reference copy of its own statement.
        self.ref_name = f"__prover_ref_{secrets.token_hex(6)}"

    @property
    def memory_cap_bytes(self) -> int:
        return self.settings.lean_memory_mb * 2**20

    def holds(self, key: HeaderKey) -> bool:
        return self.proc is not None and self.proc.alive and key in self.headers

    def holds_imports(self, key: HeaderKey) -> bool:
        return self.proc is not None and self.proc.alive and key.imports_only in self.headers

    async def ensure_started(self) -> ReplProcess:
        if self.proc is not None and self.proc.alive:
            return self.proc
        if self.proc is not None:
            await self.discard()
        launch = self.launch
        proc = await ReplProcess.spawn(
            launch.spawn_argv(), launch.cwd, launch.env, launch.preexec
        )
        self.proc = proc
        try:
            answer = await proc.request(
                protocol.command("", env=_PROBE_ENV),
                timeout=(probe_s := min(STARTUP_PROBE_S, self.settings.lean_header_timeout)),
                cpu_budget_s=self.settings.cpu_budget(probe_s),
            )
        except ReplStartError:
            raise
        except Exception as exc:
            self.proc = None
            await proc.kill()
            raise ReplStartError(
                f"the REPL command {' '.join(launch.argv)!r} did not answer a probe request "
                f"({exc}); check PROVER_LEAN_REPL_CMD and PROVER_LEAN_WORKSPACE"
            ) from exc
        if not isinstance(answer, protocol.ReplError):
            self.proc = None
            await proc.kill()
            raise ReplStartError(
                f"the REPL command {' '.join(launch.argv)!r} does not speak the Lean REPL "
                f"protocol (a probe for an unknown env got {answer!r})"
            )
        return proc

    def _forget(self) -> ReplProcess | None:
        """Detach the process and every env id it issued; ids mean nothing to its successor."""
        proc, self.proc = self.proc, None
        self.headers.clear()
        self.checks = 0
        return proc

    async def discard(self) -> None:
        """Kill a process that failed; the next request starts a fresh one."""
        proc = self._forget()
        if proc is not None:
            self.restarts += 1
            await proc.kill()

    async def recycle(self, reason: str) -> None:
        log.info("recycling worker %s: %s", self.name, reason)
        self.recycles += 1
        await self.close()

    async def close(self) -> None:
        """End a healthy process politely (EOF), killing what is left of its group."""
        proc = self._forget()
        if proc is not None:
            await proc.close()

    async def request(self, req: protocol.JsonObj, timeout: float) -> protocol.Response:
        proc = await self.ensure_started()
        return await proc.request(
            req, timeout, self.memory_cap_bytes, self.settings.cpu_budget(timeout)
        )

    async def command(
        self, text: str, env: int | None, timeout: float, *, all_tactics: bool = False
    ) -> protocol.CommandResponse:
        answer = await self.request(
            protocol.command(text, env, all_tactics=all_tactics), timeout
        )
        if isinstance(answer, protocol.CommandResponse):
            return answer
        if isinstance(answer, protocol.ReplError):
            raise RuntimeError(f"the REPL refused a command: {answer.message}")
        raise RuntimeError(f"the REPL answered a command with {type(answer).__name__}")

    async def header_env(self, split: SplitSource) -> int | EnvFailure:
        # A process that died since its last request (killed, out of memory) takes its env ids
        # with it: restart it first, so the cache below is not read for a process that is gone.
        await self.ensure_started()
        key = split.key
        env = self.headers.get(key)
        if env is not None:
            return env
        timeout = self.settings.lean_header_timeout
        base = self.headers.get(key.imports_only)
        if base is None:
            imports = "\n".join(f"import {m}" for m in split.imports)
            resp = await self.command(imports, None, timeout)
            self.header_elaborations += 1
            if resp.errors:
                return EnvFailure(resp.messages, 0)
            base = resp.env
            self.headers.put(key.imports_only, base)
        if not key.rest:
            return base
        resp = await self.command(split.header_rest, base, timeout)
        if resp.errors:
            return EnvFailure(resp.messages, split.header_line_offset)
        self.headers.put(key, resp.env)
        return resp.env

    def wants_recycling(self) -> str | None:
        if self.proc is None:
            return None
        if self.checks >= self.settings.lean_max_checks:
            return f"{self.checks} checks done"
        now = time.monotonic()
        if now - self._rss_sampled_at < RSS_SAMPLE_INTERVAL_S:
            return None
        self._rss_sampled_at = now
        rss = self.proc.rss_bytes()
        if rss > self.settings.recycle_mb * 2**20:
            return f"RSS {rss // 2**20} MB over {self.settings.recycle_mb} MB"
        return None
