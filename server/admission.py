"""Fair admission to the Lean pool: a bounded wait, shared round-robin between API keys.

Refusing every check past a fixed number in flight (the old gate) turned an ordinary burst into
a storm of 503s and retries; queueing without a bound lets one client's 10,000-proof batch make
everyone else wait behind it. So checks past `slots` wait here, one FIFO per key, and a freed
slot goes to the next key in turn: a key with one proof waits for at most one check of each
other waiting key, however many those keys have queued. A check is refused (503, Retry-After)
only when `depth` checks already wait or its expected wait passes `max_wait_s`; a waiter that
is cancelled (its client went away) leaves the queue at once. Everything is driven by futures
resolved on release: nothing polls.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass


class Refused(Exception):
    """The queue is full, or the wait would pass its limit."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class AdmissionStats:
    slots: int
    in_use: int
    queued: int
    keys_waiting: int
    refused: int


class Admission:
    def __init__(self, slots: int, depth: int, max_wait_s: float) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self.depth = depth
        self.max_wait_s = max_wait_s
        self.in_use = 0
        self.queued = 0
        self.refused = 0
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()  # keys with waiters, in the order they are served
        self._avg_hold_s = 1.0

    # ------------------------------------------------------------------ estimates

    def expected_wait(self, key: str, extra: int = 1) -> float:
        """Seconds the `extra`-th new check of `key` would wait: under round-robin, the checks
        served before it are the key's own queue plus, from each other key, at most as many."""
        if self.in_use + self.queued + extra <= self.slots:
            return 0.0
        own = len(self._queues.get(key, ())) + extra
        ahead = sum(min(len(q), own) for k, q in self._queues.items() if k != key) + own
        return (ahead / self.slots) * self._avg_hold_s

    def check_room(self, key: str, n: int = 1) -> None:
        """Raise `Refused` unless `n` more checks of `key` may wait now."""
        if self.in_use + self.queued + n <= self.slots:
            return
        if self.queued + n > self.depth:
            self.refused += 1
            raise Refused(f"the verify queue is full ({self.queued} checks waiting, "
                          f"PROVER_VERIFY_QUEUE={self.depth})", self._retry_after())
        wait = self.expected_wait(key, n)
        if wait > self.max_wait_s:
            self.refused += 1
            raise Refused(f"a check would wait about {wait:.0f} s for a verify slot, more than "
                          f"PROVER_VERIFY_QUEUE_WAIT_S={self.max_wait_s:g}", self._retry_after())

    def _retry_after(self) -> float:
        """About when one slot's worth of the queue has drained."""
        return min(60.0, max(1.0, self._avg_hold_s * max(1, self.queued) / self.slots))

    # ------------------------------------------------------------------ slots

    async def acquire(self, key: str, *, patient: bool = False) -> float:
        """Wait for a slot, in `key`'s turn, and return when it was granted (for `release`).

        An impatient caller (a single request) may be refused by `check_room`; a patient one (an
        item of a batch whose room was checked when the batch came in) waits its turn."""
        if self.in_use < self.slots and not self.queued:
            self.in_use += 1
            return time.monotonic()
        if not patient:
            self.check_room(key)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._turns.append(key)
        queue.append(waiter)
        self.queued += 1
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(time.monotonic())  # granted as it was cancelled: hand it on
            else:
                self._forget(key, waiter)
            raise
        return time.monotonic()

    def release(self, started: float) -> None:
        self.in_use -= 1
        held = time.monotonic() - started
        self._avg_hold_s = 0.9 * self._avg_hold_s + 0.1 * held
        self._grant()

    def _grant(self) -> None:
        while self.in_use < self.slots and self._turns:
            key = self._turns.popleft()
            queue = self._queues[key]
            waiter = queue.popleft()
            self.queued -= 1
            if queue:
                self._turns.append(key)  # back of the line: the other keys go first
            else:
                del self._queues[key]
            if waiter.done():  # cancelled, not yet forgotten
                continue
            self.in_use += 1
            waiter.set_result(None)

    def _forget(self, key: str, waiter: asyncio.Future[None]) -> None:
        queue = self._queues.get(key)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        self.queued -= 1
        if not queue:
            del self._queues[key]
            self._turns.remove(key)

    def stats(self) -> AdmissionStats:
        return AdmissionStats(self.slots, self.in_use, self.queued, len(self._queues),
                              self.refused)
