"""Admission limits: a per-client token bucket and a non-blocking gate for Lean checks.

Both refuse at once with a time to come back instead of queueing: a request the service cannot
serve soon is better answered now (429/503 + Retry-After) than held open until a proxy times it
out, and the waiting requests would otherwise grow without bound under overload.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per client: `per_minute` tokens refilled evenly over a minute, bursts of up
    to `per_minute` requests allowed.

    State is in this process. With one API process (the compose file) that is the whole service;
    with N replicas behind a balancer a client gets up to N times the rate, which is acceptable
    for a fairness limit (this is not a billing meter) and saves a Redis round trip per request.
    Memory is bounded: past `max_clients` the least recently seen buckets are forgotten, which
    can only make the limiter more lenient to those clients, never stricter.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float | None:
        """Spend one token: None if allowed, else the seconds until a token is available."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            self._buckets[client] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate


class Saturated(Exception):
    """Every slot of a `ConcurrencyGate` is taken."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"all slots busy; retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class ConcurrencyGate:
    """At most `slots` holders at once; `acquire` never waits.

    The Retry-After it suggests is a running average of how long a slot was held, the time in
    which, on average, one slot frees up.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self.in_use = 0
        self.rejected = 0
        self._avg_hold_s = 1.0

    def acquire(self) -> float:
        """Take a slot and return its start time, or raise `Saturated`."""
        if self.in_use >= self.slots:
            self.rejected += 1
            raise Saturated(min(60.0, max(1.0, self._avg_hold_s)))
        self.in_use += 1
        return time.monotonic()

    def release(self, started: float) -> None:
        self.in_use -= 1
        held = time.monotonic() - started
        self._avg_hold_s = 0.9 * self._avg_hold_s + 0.1 * held
