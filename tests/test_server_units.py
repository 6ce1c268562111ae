"""The service's small parts on their own: token bucket, verify gate, API keys, the SSE writer
and the JSON log lines. Time is a fake clock where it matters; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.auth import Authenticator, key_identity
from server.limits import RateLimiter
from server.logs import JsonFormatter, reset_request_id, set_request_id
from server.sse import event_stream, format_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # 6 per minute: one token every 10 s
    assert [limiter.take("a") for _ in range(6)] == [None] * 6
    wait = limiter.take("a")
    assert wait == pytest.approx(10.0)
    assert limiter.take("b") is None  # clients do not share buckets
    clock.now += 5
    assert limiter.take("a") == pytest.approx(5.0)
    clock.now += 5
    assert limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(10.0)
    clock.now += 3600  # refills only up to the burst size
    assert [limiter.take("a") for _ in range(7)].count(None) == 6


def test_token_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter(1, clock=Clock(), max_clients=3)
    for client in "abcd":
        assert limiter.take(client) is None
    assert len(limiter._buckets) == 3
    assert limiter.take("a") is None  # forgotten (least recently seen): a full bucket again
    assert limiter.take("d") is not None  # remembered


def test_api_keys_are_compared_whole_and_known_only_by_identity() -> None:
    auth = Authenticator(["alpha", "beta"])
    assert auth.enabled and not Authenticator([]).enabled
    assert auth.identify(b"Bearer alpha") == key_identity("alpha")
    assert auth.identify(b"bearer   beta ") == key_identity("beta")
    for bad in (None, b"", b"Bearer", b"Bearer alph", b"Bearer alphaa", b"Basic alpha",
                b"alpha", b"Bearer \xff"):
        assert auth.identify(bad) is None, bad
    assert "alpha" not in key_identity("alpha") and key_identity("a") != key_identity("b")


async def _source(events: list[tuple[str, dict[str, Any]]],
                  gate: asyncio.Event | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    for i, event in enumerate(events):
        if i == 1 and gate is not None:
            await gate.wait()
        yield event


async def test_event_stream_writes_ids_and_one_data_line_per_event() -> None:
    events: list[tuple[str, dict[str, Any]]] = [
        ("1-0", {"type": "progress", "samples": 1, "text": "a\nb"}),
        ("2-0", {"type": "result", "status": "succeeded"})]
    out = [chunk async for chunk in event_stream(_source(events), heartbeat_s=30,
                                                 draining=asyncio.Event())]
    assert out[0].startswith("retry: ")
    assert out[1:] == [format_event(i, d) for i, d in events]
    assert out[1] == ('id: 1-0\ndata: {"type": "progress", "samples": 1, "text": "a\\nb"}\n\n')


async def test_event_stream_sends_heartbeats_while_the_source_is_quiet() -> None:
    release = asyncio.Event()
    events = [("1-0", {"type": "status"}), ("2-0", {"type": "result"})]
    stream = event_stream(_source(events, release), heartbeat_s=0.01, draining=asyncio.Event())
    seen = []
    async for chunk in stream:
        seen.append(chunk)
        if chunk.startswith(": heartbeat"):
            release.set()
    assert seen[1].startswith("id: 1-0") and seen[2] == ": heartbeat\n\n"
    assert seen[-1].startswith("id: 2-0")


async def test_event_stream_ends_when_draining_or_when_its_source_fails() -> None:
    draining = asyncio.Event()
    never = asyncio.Event()
    stream = event_stream(_source([("1-0", {}), ("2-0", {})], never), heartbeat_s=30,
                          draining=draining)
    seen = []
    async for chunk in stream:
        seen.append(chunk)
        if chunk.startswith("id: 1-0"):
            draining.set()
    assert "shutting down" in seen[-1] and len(seen) == 3

    async def broken() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        yield "1-0", {}
        raise ConnectionError("redis went away")

    out = [c async for c in event_stream(broken(), heartbeat_s=30, draining=asyncio.Event())]
    assert len(out) == 2 and out[1].startswith("id: 1-0")


def test_log_lines_are_json_with_the_request_id_and_extras() -> None:
    record = logging.LogRecord("server.access", logging.INFO, __file__, 1, "GET %s %d",
                               ("/healthz", 200), None)
    record.status = 200
    token = set_request_id("rid-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        reset_request_id(token)
    out = json.loads(line)
    assert out["msg"] == "GET /healthz 200" and out["request_id"] == "rid-1"
    assert out["status"] == 200 and out["level"] == "info" and out["logger"] == "server.access"
    assert "\n" not in line
