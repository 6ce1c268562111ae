"""Proof-search jobs through HTTP with a real worker (`run_worker` in-process, scripted
generation, the fake REPL, a real Redis): the life cycle, the event stream, cancellation,
idempotency under concurrency, and restarts of the API and of Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from server.app import create_app
from tests.conftest import RedisServer
from tests.server_support import (
    STATEMENT,
    HeldGenerator,
    live_client,
    settings,
    sse_events,
    worker,
)

FAIL = "  linarith [fail]"
PROOF = "  rfl"


def prove_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"formal_statement": STATEMENT, "header": "import Mathlib\n",
                            "search": "sampling", "budget": 10, "concurrency": 1, "seed": 1}
    body.update(overrides)
    return body


async def collect(client: httpx.AsyncClient, job_id: str,
                  headers: dict[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    events = []
    async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
        assert r.status_code == 200
        async for event_id, data in sse_events(r):
            if event_id is not None:
                events.append((event_id, data))
    return events


def stream_order(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


async def test_job_life_cycle_progress_events_and_result(redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1, job_claim_idle_s=3)
    gen = HeldGenerator([FAIL, FAIL, PROOF], hold_at=2)  # two failures, then wait, then proof
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        r = await client.post("/v1/prove", json=prove_body())
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        events: list[tuple[str, dict[str, Any]]] = []
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for event_id, data in sse_events(stream):
                if event_id is None:
                    continue
                events.append((event_id, data))
                if data["type"] == "progress" and data["samples"] == 2:
                    # mid-search: the generator holds the third sample back
                    view = (await client.get(f"/v1/jobs/{job_id}")).json()
                    assert view["status"] == "running" and view["result"] is None
                    assert view["progress"] == {"samples": 2, "budget": 10, "tree_size": 0}
                    gen.release.set()
        types = [d["type"] for _, d in events]
        assert types[0] == "status" and events[0][1]["status"] == "queued"
        assert {"type": "status", "status": "running"} in [d for _, d in events]
        assert types[-1] == "result" and "progress" in types
        assert types.index("progress") < len(types) - 1
        ids = [stream_order(i) for i, _ in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        samples = [d["samples"] for _, d in events if d["type"] == "progress"]
        assert samples == sorted(samples) and samples[-1] == 3
        final = events[-1][1]
        assert final["status"] == "succeeded"
        result = final["result"]
        assert {"proved", "proof", "verdict", "samples", "tree_size", "time_s"} <= set(result)
        assert result["proved"] is True and result["verdict"] == "proved"
        assert result["samples"] == 3 and result["proof"].endswith("rfl")

        view = (await client.get(f"/v1/jobs/{job_id}")).json()
        assert view["status"] == "succeeded" and view["result"] == result

        # Last-Event-ID resumes right after the given event; `after` does the same
        cut = next(i for i, (_, d) in enumerate(events) if d["type"] == "progress")
        resumed = await collect(client, job_id, {"Last-Event-ID": events[cut][0]})
        assert resumed == events[cut + 1:]
        r = await client.get(f"/v1/jobs/{job_id}/events", params={"after": events[cut][0]})
        assert r.text.count("data:") == len(events) - cut - 1


async def test_cancelling_a_running_job_stops_its_search(redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1, job_claim_idle_s=3)
    gen = HeldGenerator([FAIL], hold_at=1)  # the second sample never comes
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        job_id = (await client.post("/v1/prove", json=prove_body())).json()["job_id"]
        await gen.holding.wait()
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "running"
        r = await client.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        events = await collect(client, job_id)
        assert events[-1][1] == {"type": "result", "status": "cancelled", "result": None}
        # the worker's only slot is free again: the next job runs to its end
        nxt = (await client.post("/v1/prove", json=prove_body(budget=2))).json()["job_id"]
        final = (await collect(client, nxt))[-1][1]
        assert final["status"] == "succeeded" and final["result"]["proved"] is False
        assert final["result"]["samples"] == 2
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "cancelled"


async def test_concurrent_submissions_with_one_idempotency_key_make_one_job(
        redis_url: str) -> None:
    s = settings(redis_url)
    async with live_client(create_app(s), s) as client:
        responses = await asyncio.gather(*(
            client.post("/v1/prove", json=prove_body(), headers={"Idempotency-Key": "once"})
            for _ in range(10)))
        assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
        assert len({r.json()["job_id"] for r in responses}) == 1
        metrics = (await client.get("/metrics")).text
        assert 'prover_jobs{status="queued"} 1.0' in metrics


async def test_jobs_and_results_survive_api_and_redis_restarts(
        redis_server: RedisServer, redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1, job_claim_idle_s=3)
    async with live_client(create_app(s), s) as client:
        async with worker(s, HeldGenerator([FAIL, PROOF])):
            done = (await client.post("/v1/prove", json=prove_body())).json()["job_id"]
            before = await collect(client, done)
        queued = (await client.post("/v1/prove", json=prove_body(),
                                    headers={"Idempotency-Key": "k"})).json()["job_id"]
        finished = (await client.get(f"/v1/jobs/{done}")).json()
    assert finished["status"] == "succeeded" and finished["result"]["proved"] is True

    redis_server.stop()  # append-only file, fsync always: nothing acknowledged is lost
    redis_server.start()

    app = create_app(s)  # a new API process on the same Redis
    async with live_client(app, s) as client:
        assert (await client.get(f"/v1/jobs/{done}")).json() == finished
        assert await collect(client, done) == before
        view = (await client.get(f"/v1/jobs/{queued}")).json()
        assert view["status"] == "queued"
        again = await client.post("/v1/prove", json=prove_body(), headers={"Idempotency-Key": "k"})
        assert again.status_code == 200 and again.json()["job_id"] == queued
        # and the queued job is still in the queue: a worker started now runs it
        async with worker(s, HeldGenerator([PROOF])):
            final = (await collect(client, queued))[-1][1]
        assert final["status"] == "succeeded" and final["result"]["proved"] is True


async def test_an_idle_stream_sends_heartbeats_until_the_job_ends(redis_url: str) -> None:
    s = settings(redis_url)
    app = create_app(s, heartbeat_s=0.05)
    async with live_client(app, s) as client:
        job_id = (await client.post("/v1/prove", json=prove_body())).json()["job_id"]
        seen: list[Any] = []
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            async for event_id, data in sse_events(stream):
                seen.append(data if event_id is not None else "heartbeat")
                if data == ": heartbeat" and "cancel" not in seen:
                    seen.append("cancel")
                    r = await client.delete(f"/v1/jobs/{job_id}")
                    assert r.status_code == 200
        # nobody works on the job: heartbeats keep the connection alive until it is cancelled
        assert seen[0] == {"type": "status", "status": "queued"}
        assert seen.index("heartbeat") < seen.index("cancel")
        assert seen[-1] == {"type": "result", "status": "cancelled", "result": None}
