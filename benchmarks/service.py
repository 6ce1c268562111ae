#!/usr/bin/env python3
"""Benchmark of the HTTP service against an instant fake REPL (tests/fixtures/fake_repl.py).

    .venv/bin/python benchmarks/service.py [--quick]

Two measurements, each against a baseline taken in the same run on the same machine:

(a) verify: `POST /v1/verify` through HTTP against `await pool.check(...)` in-process. The HTTP
    side is the real product: `prover serve` in its own process (uvicorn, JSON access logs, the
    auth/limit/body middleware, pydantic validation, a 2-worker Lean pool), driven over
    loopback by an httpx client keeping CONCURRENCY requests in flight. The baseline is a
    2-worker pool in this process with the same number of checks in flight. Reported:
    requests/s of each (`http_rps`, `inproc_rps`) and per-request latency percentiles of
    the HTTP side (`p50_ms`, `p99_ms`; in-process: `inproc_p50_ms`, `inproc_p99_ms`), which at
    CONCURRENCY in flight are mostly queueing; `single_*`: the same one request at a time,
    the per-request cost itself. The two sides run alternately in chunks so that machine drift
    hits both alike. The load comes from a minimal keep-alive HTTP/1.1 client (`RawClient`):
    httpx's own CPU cost per request would otherwise be measured as the server's.
(b) jobs: 1,000 `POST /v1/prove` jobs (sampling, budget 1, a scripted model that proves at
    once) are submitted through HTTP with no worker running, so the queue holds 1,000 jobs;
    then one `prover worker` (in this process, WORKER_JOBS slots, 2 Lean workers) starts and
    drains it. `submit_to_start_ms_p50`/`_p99`: per job, the time from its submission
    (`created_at`, set by Redis's submit script) to a worker starting it (`started_at`), i.e.
    the wait in a 1,000-deep backlog, measured from when the worker started (the time spent
    submitting is not counted against the queue). `drain_jobs_per_s`: jobs run per second
    while draining. `idle_submit_to_start_ms_p50`: the same latency for jobs submitted one at a
    time to an idle, waiting worker: the queue's own dispatch cost (XADD -> XREADGROUP BLOCK
    wake-up -> start script), with no backlog. `submit_ms_p50_first`/`_last`: HTTP latency of
    the first and the last 100 submissions, showing whether submitting slows as the queue
    grows.

Redis is a private `redis-server` (append-only, fsync every second as in the compose file).
Human-readable lines first; the LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from prover.config import Settings  # noqa: E402
from prover.lean import CheckRequest, LeanPool, Verdict  # noqa: E402
from prover.model.scripted import ScriptedGenerator  # noqa: E402
from prover.runtime import Runtime  # noqa: E402
from server.jobs import JobStore  # noqa: E402
from tests.fixtures.redis_server import RedisServer, free_port  # noqa: E402

FAKE_REPL = REPO / "tests" / "fixtures" / "fake_repl.py"
STATEMENT = "theorem bench_add_zero (x : Nat) (h : 0 < x) : x + 0 = x := by"
HEADER = "import Mathlib\nimport Aesop\n\nopen BigOperators Real Nat Topology Rat\n\n"
CODE = f"{HEADER}{STATEMENT}\n  simp\n"
LEAN_WORKERS = 2
CONCURRENCY = 32
WORKER_JOBS = 8
QUEUED_JOBS = 1000


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(x: float) -> float:
    return round(x * 1000, 3)


def environ(redis_url: str, port: int, empty_config: Path) -> dict[str, str]:
    return {
        "PROVER_LEAN_REPL_CMD": f"{sys.executable} -S {FAKE_REPL}",
        "PROVER_LEAN_SANDBOX": "none",
        "PROVER_LEAN_WORKERS": str(LEAN_WORKERS),
        "PROVER_REDIS_URL": redis_url,
        "PROVER_SERVER_PORT": str(port),
        "PROVER_VERIFY_CONCURRENCY": str(4 * CONCURRENCY),
        "PROVER_API_RATE_LIMIT": "100000000",
        "PROVER_WORKER_JOBS": str(WORKER_JOBS),
        "PROVER_MODEL_BACKEND": "openai",  # never started: the worker gets a scripted model
        "PROVER_CONFIG": str(empty_config),
    }


# ------------------------------------------------------------------------------ processes


@contextlib.contextmanager
def redis_server(directory: Path) -> Any:
    server = RedisServer(directory, fsync="everysec")
    try:
        server.start()
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def api_process(env: dict[str, str], log_path: Path) -> AsyncIterator[str]:
    """`prover serve` in its own process; yields its base URL once uvicorn listens. Its JSON
    log goes to `log_path` through a thread that keeps the pipe drained."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover", "serve"], cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PROVER_")}, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        with log_path.open("w", encoding="utf-8") as log:
            for line in proc.stderr:
                log.write(line)
                if "Uvicorn running on" in line:
                    ready.set()
        ready.set()  # the process ended: stop waiting

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        await asyncio.to_thread(ready.wait, 60)
        if proc.poll() is not None or not ready.is_set():
            raise SystemExit("prover serve did not start:\n" + log_path.read_text()[-3000:])
        yield f"http://127.0.0.1:{env['PROVER_SERVER_PORT']}"
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 60)
        thread.join(timeout=10)


async def run_concurrently(n: int, in_flight: int,
                           one: Callable[[], Awaitable[None]]) -> tuple[float, list[float]]:
    """n calls of `one`, `in_flight` at a time; (elapsed seconds, per-call latencies)."""
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []

    async def timed() -> None:
        async with gate:
            t0 = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(timed() for _ in range(n)))
    return time.perf_counter() - t0, latencies


# ------------------------------------------------------------------------------ (a)


class RawClient:
    """Keep-alive HTTP/1.1 connections speaking just enough of the protocol to POST JSON and
    read a Content-Length answer. httpx costs about a millisecond of client CPU per request;
    on a 2-core machine shared by client, server and REPLs that would be measured as server
    time, so the load is driven with this instead (httpx still checks the answers' shape)."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host, self.port, self.size = host, port, connections
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self.all: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        for _ in range(self.size):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.all.append(writer)
            self.idle.put_nowait((reader, writer))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self.idle.get()
        try:
            writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json"
                         b"\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            return status, await reader.readexactly(length)
        finally:
            self.idle.put_nowait((reader, writer))

    async def close(self) -> None:
        for writer in self.all:
            writer.close()
        for writer in self.all:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def bench_verify(settings: Settings, client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    request = CheckRequest(code=CODE, statement=STATEMENT)
    body = {"code": CODE, "statement": STATEMENT}
    checked = await client.post("/v1/verify", json=body)
    assert checked.status_code == 200 and checked.json()["verdict"] == "proved", checked.text
    raw_body = json.dumps(body).encode()
    raw = RawClient("127.0.0.1", int(str(client.base_url.port)), CONCURRENCY)
    await raw.open()

    async def http_one() -> None:
        status, answer = await raw.post("/v1/verify", raw_body)
        assert status == 200 and b'"verdict":"proved"' in answer, answer

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(raw.close)
        pool = await stack.enter_async_context(LeanPool(settings, workers=LEAN_WORKERS))

        async def inproc_one() -> None:
            result = await pool.check(request)
            assert result.verdict is Verdict.PROVED, result

        for one in (inproc_one, http_one):  # warm-up: headers, connections, caches
            await run_concurrently(4 * CONCURRENCY, CONCURRENCY, one)
        http_s = inproc_s = 0.0
        http_lat: list[float] = []
        inproc_lat: list[float] = []
        chunk = max(CONCURRENCY * 4, n // 5)
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            elapsed, lat = await run_concurrently(k, CONCURRENCY, inproc_one)
            inproc_s += elapsed
            inproc_lat += lat
            elapsed, lat = await run_concurrently(k, CONCURRENCY, http_one)
            http_s += elapsed
            http_lat += lat
        # One request at a time: latency without queueing, i.e. the per-request cost itself.
        n_single = max(100, n // 10)
        _, inproc_single = await run_concurrently(n_single, 1, inproc_one)
        _, http_single = await run_concurrently(n_single, 1, http_one)
    return {
        "http_rps": round(n / http_s, 1),
        "inproc_rps": round(n / inproc_s, 1),
        "p50_ms": ms(pct(http_lat, 0.5)),
        "p99_ms": ms(pct(http_lat, 0.99)),
        "inproc_p50_ms": ms(pct(inproc_lat, 0.5)),
        "inproc_p99_ms": ms(pct(inproc_lat, 0.99)),
        "http_overhead_ms_p50": ms(pct(http_lat, 0.5) - pct(inproc_lat, 0.5)),
        "single_p50_ms": ms(pct(http_single, 0.5)),
        "single_inproc_p50_ms": ms(pct(inproc_single, 0.5)),
        "single_overhead_ms_p50": ms(pct(http_single, 0.5) - pct(inproc_single, 0.5)),
        "verify_requests": n,
    }


# ------------------------------------------------------------------------------ (b)


async def bench_jobs(settings: Settings, client: httpx.AsyncClient, queued: int,
                     idle_probes: int) -> dict[str, Any]:
    from server.worker import run_worker

    job = {"formal_statement": STATEMENT, "header": HEADER, "search": "sampling", "budget": 1,
           "concurrency": 1}
    submit_lat: list[float] = []
    ids: list[str] = []

    async def submit() -> None:
        t0 = time.perf_counter()
        r = await client.post("/v1/prove", json=job)
        submit_lat.append(time.perf_counter() - t0)
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])

    for _ in range(queued):  # one at a time: latency as the queue grows, in order
        await submit()
    store = JobStore.from_settings(settings)
    depth = await store.queue_depth()
    assert depth == queued, depth
    generator = ScriptedGenerator(lambda prompt, seed: "  simp\n```\n")
    runtime = Runtime(settings, generator=generator, pool=LeanPool(settings))
    await runtime.start()
    stop = asyncio.Event()
    try:
        worker_started = time.time()
        worker = asyncio.create_task(run_worker(settings, "bench", runtime=runtime, stop=stop))
        for job_id in ids:  # each stream ends at its job's result (no polling)
            async for _ in store.events(job_id):
                pass
        drained = time.time()
        jobs = [await store.get(job_id) for job_id in ids]
        assert all(j is not None and j.status == "succeeded" for j in jobs)
        waits = [max(0.0, j.started_at - max(j.created_at, worker_started))  # type: ignore
                 for j in jobs if j is not None]
        proved = sum(1 for j in jobs if j is not None and (j.result or {}).get("proved"))

        idle: list[float] = []
        for _ in range(idle_probes):  # the worker is idle and blocked in XREADGROUP
            r = await client.post("/v1/prove", json=job)
            job_id = r.json()["job_id"]
            async for _ in store.events(job_id):
                pass
            done = await store.get(job_id)
            assert done is not None and done.started_at is not None
            idle.append(done.started_at - done.created_at)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await worker
        await runtime.close()
        await store.close()
    return {
        "queued_jobs": queued,
        "jobs_proved": proved,
        "submit_to_start_ms_p50": ms(pct(waits, 0.5)),
        "submit_to_start_ms_p99": ms(pct(waits, 0.99)),
        "drain_s": round(drained - worker_started, 3),
        "drain_jobs_per_s": round(queued / (drained - worker_started), 1),
        "idle_submit_to_start_ms_p50": ms(pct(idle, 0.5)),
        "idle_submit_to_start_ms_max": ms(max(idle)),
        "submit_ms_p50": ms(pct(submit_lat, 0.5)),
        "submit_ms_p50_first": ms(pct(submit_lat[:100], 0.5)),
        "submit_ms_p50_last": ms(pct(submit_lat[-100:], 0.5)),
        "worker_jobs": WORKER_JOBS,
    }


# ------------------------------------------------------------------------------ main


async def main(quick: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    n_verify = 600 if quick else 3000
    queued = 200 if quick else QUEUED_JOBS
    idle_probes = 20 if quick else 50
    out: dict[str, Any] = {"quick": quick, "lean_workers": LEAN_WORKERS,
                           "concurrency": CONCURRENCY}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        empty = tmp / "empty.toml"
        empty.write_text("", encoding="utf-8")
        with redis_server(tmp) as redis_url:
            env = environ(redis_url, free_port(), empty)
            settings = Settings.load(environ=env, config_file=empty)
            limits = httpx.Limits(max_connections=CONCURRENCY,
                                  max_keepalive_connections=CONCURRENCY)
            async with api_process(env, tmp / "api.log") as url, httpx.AsyncClient(
                    base_url=url, limits=limits, timeout=60) as client:
                print(f"(a) /v1/verify over HTTP (prover serve, {LEAN_WORKERS} Lean workers) vs "
                      f"pool.check in-process, {n_verify} checks each, {CONCURRENCY} in flight")
                a = await bench_verify(settings, client, n_verify)
                out.update(a)
                print(f"  HTTP {a['http_rps']:.0f} req/s, p50 {a['p50_ms']:.2f} ms, "
                      f"p99 {a['p99_ms']:.2f} ms")
                print(f"  in-process {a['inproc_rps']:.0f} checks/s, p50 "
                      f"{a['inproc_p50_ms']:.2f} ms, p99 {a['inproc_p99_ms']:.2f} ms")
                print(f"  HTTP/in-process throughput {a['http_rps'] / a['inproc_rps']:.2f}; "
                      f"p50 {a['http_overhead_ms_p50']:.2f} ms more at {CONCURRENCY} in flight")
                print(f"  one at a time: HTTP p50 {a['single_p50_ms']:.2f} ms, in-process "
                      f"{a['single_inproc_p50_ms']:.2f} ms: {a['single_overhead_ms_p50']:.2f} ms "
                      "per request for HTTP, validation, auth/limits, logging and metrics")

                print(f"(b) {queued} prove jobs queued through HTTP, then one worker "
                      f"({WORKER_JOBS} job slots) drains them")
                b = await bench_jobs(settings, client, queued, idle_probes)
                out.update(b)
                print(f"  submitting: p50 {b['submit_ms_p50']:.2f} ms per POST (first 100: "
                      f"{b['submit_ms_p50_first']:.2f} ms, last 100: "
                      f"{b['submit_ms_p50_last']:.2f} ms)")
                print(f"  drained in {b['drain_s']:.2f} s = {b['drain_jobs_per_s']:.0f} jobs/s; "
                      f"submission-to-start in the backlog p50 {b['submit_to_start_ms_p50']:.0f}"
                      f" ms, p99 {b['submit_to_start_ms_p99']:.0f} ms")
                print(f"  idle worker, empty queue: submission-to-start p50 "
                      f"{b['idle_submit_to_start_ms_p50']:.2f} ms "
                      f"(max {b['idle_submit_to_start_ms_max']:.2f} ms)")
    out["total_s"] = round(time.perf_counter() - t_start, 2)
    print(f"done in {out['total_s']:.1f} s")
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and jobs (CI)")
    args = parser.parse_args()
    # Warnings only: the worker logs every job at info level, 1,000 lines nobody reads here.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(main(args.quick))
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    cli()
