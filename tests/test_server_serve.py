"""`prover serve` as an operator runs it (a process, JSON logs, SIGTERM) and the graceful drain.
The compose file and the images are checked in tests/test_docker.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from prover.lean import CheckRequest, CheckResult, LeanPool
from server.app import build_server, create_app
from tests.conftest import fake_cmd
from tests.fixtures.redis_server import free_port
from tests.server_support import GOOD, HEADER, STATEMENT, settings, sse_events

REPO = Path(__file__).resolve().parent.parent


def serve_env(redis_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVER_")}
    env.update({"PROVER_LEAN_REPL_CMD": fake_cmd(), "PROVER_LEAN_WORKERS": "1",
                "PROVER_LEAN_SANDBOX": "none", "PROVER_REDIS_URL": redis_url,
                "PROVER_SERVER_PORT": str(port), "PROVER_CONFIG": os.devnull, **extra})
    return env


def test_prover_serve_runs_logs_json_and_stops_cleanly_on_sigterm(redis_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover", "serve", "--host", "127.0.0.1"],
        cwd=REPO, env=serve_env(redis_url, port), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # until uvicorn says it listens (or the process dies)
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("prover serve exited before listening:\n" + "".join(lines))
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        verify = httpx.post(f"{base}/v1/verify", json={"code": GOOD}, timeout=30,
                            headers={"X-Request-ID": "from-test"})
        assert verify.json()["verdict"] == "proved"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in [*lines, *err.splitlines()] if line.strip()]
    assert all({"ts", "level", "msg", "logger"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "server.access"]
    assert any(r["request_id"] == "from-test" and r["status"] == 200
               and r["route"] == "/v1/verify" for r in access), access
    assert any("Shutting down" in r["msg"] for r in records)


def test_prover_serve_that_cannot_start_says_why_in_one_line(redis_url: str) -> None:
    env = serve_env(redis_url, free_port(), PROVER_LEAN_REPL_CMD="/nonexistent/repl")
    done = subprocess.run([sys.executable, "-m", "prover", "serve"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("prover: ") and "PROVER_LEAN_REPL_CMD" in last


async def test_shutdown_drains_in_flight_requests_and_ends_event_streams(
        redis_url: str) -> None:
    class SignallingPool(LeanPool):
        entered = asyncio.Event()

        async def check(self, request: CheckRequest) -> CheckResult:
            self.entered.set()
            return await super().check(request)

    s = settings(redis_url, lean_workers=1)
    pool = SignallingPool(s)
    await pool.start()
    app = create_app(s, pool=pool, heartbeat_s=30)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = build_server(s, app)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            job_id = (await client.post("/v1/prove", json={
                "formal_statement": STATEMENT})).json()["job_id"]
            slow = asyncio.create_task(client.post("/v1/verify", json={
                "code": f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=1\n"}))
            async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
                events = sse_events(stream)
                first = await anext(events)
                assert first[1] == {"type": "status", "status": "queued"}
                await pool.entered.wait()
                server.should_exit = True  # what SIGTERM does
                rest = [item async for item in events]
            # the stream was told to go (the client would reconnect with Last-Event-ID) ...
            assert rest and rest[-1][0] is None and "shutting down" in rest[-1][1]
            # ... while the request in flight was answered in full
            answer = await slow
            assert answer.status_code == 200 and answer.json()["verdict"] == "proved"
        await serving
        assert app.state.service.draining.is_set()
    finally:
        server.should_exit = True
        await serving
        await pool.close()


def test_idle_connections_outlive_the_clients_pool_expiry(redis_url: str) -> None:
    """After a burst, httpx (ours, kimina-client's) reuses a pooled connection for the next
    request, a batch. Had the server's keep-alive been as short as the client's pool expiry
    (uvicorn's 5 s against httpx's 5 s), it would sometimes close that connection under the
    request and the client got a connection reset (about one run in two in a 400-request burst
    then a batch); the client must always be the one that drops an idle connection first."""
    s = settings(redis_url, lean_workers=1)
    server = build_server(s, create_app(s))
    client_expiry = httpx.Limits(max_connections=None).keepalive_expiry
    assert client_expiry is not None
    assert server.config.timeout_keep_alive > max(client_expiry, 15.0)  # 15 s: aiohttp's
