"""An oversized body gets the 413 JSON in Python's own clients too: urllib and requests send the
whole body before they read an answer, so a server that answers early and closes leaves them
with a connection reset. The Guard reads and drops the body (up to PROVER_API_DRAIN_MB) first."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import httpx
import requests

from server.app import create_app
from tests.server_support import GOOD, live_server, settings

BIG = 20 * 1024 * 1024  # the 20 MB


def _body(size: int) -> bytes:
    return json.dumps({"code": "x" * size}).encode()


def _urllib(url: str, body: bytes, chunked: bool = False) -> tuple[int, dict[str, Any]]:
    data: Any = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    headers = {"Content-Type": "application/json"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _requests(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    answer = requests.post(url, data=body, headers={"Content-Type": "application/json"},
                           timeout=120)
    return answer.status_code, answer.json()


def _httpx(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"},
                        timeout=120)
    return answer.status_code, answer.json()


async def test_a_20_mb_body_gets_the_413_json_in_urllib_requests_and_httpx() -> None:
    s = settings(api_max_body_kb=1024, api_max_batch_body_mb=2)
    app = create_app(s)
    body = _body(BIG)
    async with live_server(app, s) as base:
        url = f"{base}/v1/verify"
        batch_url = f"{base}/v1/verify/batch"
        calls = [("urllib", _urllib, url), ("urllib chunked",
                                             lambda u, b: _urllib(u, b, chunked=True), url),
                 ("requests", _requests, url), ("httpx", _httpx, url),
                 ("urllib, batch route", _urllib, batch_url)]
        outcomes = []
        for name, call, target in calls:
            big = body if target == url else json.dumps(
                {"items": [{"id": 1, "code": "x" * (3 << 20)}]}).encode()
            outcomes.append((name, *await asyncio.to_thread(call, target, big)))
        # and the connection is still good for the next request
        ok = await asyncio.to_thread(_requests, url, json.dumps({"code": GOOD}).encode())
    for name, status, answer in outcomes:
        assert status == 413, (name, status, answer)
        assert answer["error"]["code"] == "payload_too_large", (name, answer)
    assert "2048 KiB" in outcomes[-1][2]["error"]["message"]  # the batch routes' own limit
    # each names the setting that raises it, and the single route points at the batch route
    assert "PROVER_API_MAX_BATCH_BODY_MB" in outcomes[-1][2]["error"]["message"]
    single = outcomes[0][2]["error"]["message"]
    assert "PROVER_API_MAX_BODY_KB" in single and "/v1/verify/batch" in single, single
    assert ok == (200, ok[1]) and ok[1]["verdict"] == "proved"


async def test_a_body_past_the_drain_cap_is_refused_without_reading_it() -> None:
    s = settings(api_max_body_kb=1, api_drain_mb=1)
    app = create_app(s)
    async with live_server(app, s) as base, httpx.AsyncClient(timeout=60) as client:
        # announced and past the cap: answered at once, connection closed after
        r = await client.post(f"{base}/v1/verify", content=_body(3 << 20),
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers.get("connection") == "close"
        # over the limit but under the cap: drained, the connection stays open
        r = await client.post(f"{base}/v1/verify", content=_body(512 << 10),
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers.get("connection") != "close"
