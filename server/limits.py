"""The per-client rate limit: a token bucket that refuses at once with a time to come back.

A client past its rate is better answered now (429 + Retry-After) than queued; how many checks
may wait for the Lean pool, and in which order, is server/admission.py's job.
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
