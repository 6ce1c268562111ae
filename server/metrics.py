"""Prometheus metrics of one API process, in a registry of its own.

A private registry (not prometheus_client's global one) lets several apps live in one process,
as they do in tests and the benchmark, without "duplicated timeseries" errors. Figures that
belong to other objects (the Lean pool's workers, the Redis job counts) are read when scraped,
not mirrored on every change, so they can never drift from their source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# `*_created` timestamps double the series count for nothing a dashboard uses (process-wide).
disable_created_metrics()  # type: ignore[no-untyped-call]

# Latency buckets from a cached-header fake check (~2 ms) to a long real Lean proof (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)


class PoolCollector(Collector):
    """`LeanPool.stats()` as gauges and counters, read at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        workers = GaugeMetricFamily("prover_lean_workers", "Lean REPL workers of this process's "
                                    "pool, by state", labels=["state"])
        busy = int(s.get("busy", 0))
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], max(0, int(s.get("workers", 0)) - busy))
        yield workers
        yield GaugeMetricFamily("prover_lean_queued", "checks waiting for a Lean worker",
                                value=int(s.get("queued", 0)))
        checks = CounterMetricFamily("prover_lean_checks", "checks finished by the pool, by "
                                     "verdict", labels=["verdict"])
        for verdict, n in sorted(dict(s.get("verdicts", {})).items()):
            checks.add_metric([verdict], n)
        yield checks
        yield CounterMetricFamily("prover_lean_worker_restarts", "REPL workers replaced after a "
                                  "failure", value=int(s.get("restarts", 0)))
        yield CounterMetricFamily("prover_lean_worker_recycles", "REPL workers replaced for "
                                  "memory or check count", value=int(s.get("recycles", 0)))
        yield CounterMetricFamily("prover_lean_header_elaborations", "headers imported and "
                                  "elaborated", value=int(s.get("header_elaborations", 0)))


class JobsCollector(Collector):
    """The job store's figures as of the current scrape (fetched by the async /metrics route,
    since a collector cannot await): Redis reachability, queue depth, jobs by status."""

    ACTIVE = ("queued", "running")
    FINISHED = ("succeeded", "failed", "cancelled")

    def __init__(self) -> None:
        self.redis_up = False
        self.queue_depth = 0
        self.counts: dict[str, int] = {}

    def update(self, queue_depth: int, counts: Mapping[str, int]) -> None:
        self.redis_up, self.queue_depth, self.counts = True, queue_depth, dict(counts)

    def unreachable(self) -> None:
        self.redis_up = False

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("prover_redis_up", "1 if Redis answered this scrape's queries",
                                value=int(self.redis_up))
        if not self.redis_up:
            return  # no stale figures: absent series are what alerting rules expect
        yield GaugeMetricFamily("prover_jobs_queue_depth", "jobs waiting for a worker",
                                value=self.queue_depth)
        active = GaugeMetricFamily("prover_jobs", "unfinished jobs by status",
                                   labels=["status"])
        for status in self.ACTIVE:
            active.add_metric([status], self.counts.get(status, 0))
        yield active
        finished = CounterMetricFamily("prover_jobs_finished", "jobs that ended, by final "
                                       "status (kept in Redis, so across API restarts)",
                                       labels=["status"])
        for status in (*self.FINISHED, *sorted(set(self.counts) - {*self.ACTIVE,
                                                                     *self.FINISHED})):
            finished.add_metric([status], self.counts.get(status, 0))
        yield finished


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("prover_http_requests", "HTTP requests answered, by route "
                                "template and status", ["method", "route", "status"], registry=r)
        self.latency = Histogram("prover_http_request_duration_seconds", "time from request to "
                                 "the end of the response", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("prover_http_requests_in_flight", "HTTP requests being served "
                               "(event streams included)", registry=r)
        self.verify_in_flight = Gauge("prover_verify_in_flight", "/v1/verify checks running or "
                                      "queued in the pool", registry=r)
        self.verify_saturated = Counter("prover_verify_saturated", "verify requests and batches "
                                        "refused with 503: admission queue full or wait too long",
                                        registry=r)
        self.verify_queued = Gauge("prover_verify_queued", "checks waiting for a verify slot in "
                                   "the admission queue", registry=r)
        self.verdicts = Counter("prover_verify_verdicts", "verdicts returned by /v1/verify",
                                ["verdict"], registry=r)
        self.jobs_submitted = Counter("prover_jobs_submitted", "POST /v1/prove outcomes: a new "
                                      "job, or an Idempotency-Key replay", ["outcome"], registry=r)
        self.jobs = JobsCollector()
        r.register(self.jobs)

    def watch_pool(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        """Report a Lean pool's `stats()` (read at every scrape)."""
        self.registry.register(PoolCollector(stats))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
