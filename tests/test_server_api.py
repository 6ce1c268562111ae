"""The HTTP API as a client sees it: verify, job submission, errors, auth, limits, health,
metrics and the OpenAPI document. The job life cycle with a real worker is in
test_server_jobs_http.py; serving, draining and the compose file in test_server_serve.py.

Lean is the fake REPL (tests/fixtures/fake_repl.py): any proof without a `fail` word or `sorry`
is proved; `-- fake:sleep=S` makes a check slow. Redis is the real `redis-server` of conftest.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import httpx
import pytest

from prover.lean import CheckRequest, CheckResult, LeanPool
from server.app import create_app
from server.logs import JsonFormatter
from tests.conftest import RedisServer
from tests.server_support import (
    BAD,
    GOOD,
    HEADER,
    SORRY,
    STATEMENT,
    asgi_client,
    error_of,
    live_client,
    settings,
)

VERIFY_KEYS = {"verdict", "messages", "sorries", "axioms", "rejection", "error", "time_s",
               "cached"}


def prove_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"formal_statement": STATEMENT, "search": "sampling", "budget": 4}
    body.update(overrides)
    return body


class SignallingPool(LeanPool):
    """A LeanPool that tells the test how many checks have entered it."""

    def __init__(self, *args: Any, signal_at: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = 0
        self.signal_at = signal_at
        self.reached = asyncio.Event()

    async def check(self, request: CheckRequest) -> CheckResult:
        self.entered += 1
        if self.entered >= self.signal_at:
            self.reached.set()
        return await super().check(request)


# ------------------------------------------------------------------------------ verify


async def test_verify_returns_the_verify_object_with_the_right_verdict() -> None:
    app = create_app(settings())
    cases = {
        GOOD: "proved",
        BAD: "failed",
        SORRY: "incomplete",
        f"{HEADER}axiom cheat : False\n{STATEMENT}\n  exact cheat.elim\n": "rejected",
    }
    async with asgi_client(app) as client:
        for code, verdict in cases.items():
            r = await client.post("/v1/verify", json={"code": code, "statement": STATEMENT})
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body) == VERIFY_KEYS
            assert body["verdict"] == verdict, (code, body)
        # a proof of another theorem than the one asked for is not `proved`
        other = "theorem t1 (a : Nat) : a + 0 = a := by"
        r = await client.post("/v1/verify", json={"code": GOOD, "statement": other})
        assert r.json()["verdict"] == "rejected"
        # without a statement every named theorem of the file is checked
        r = await client.post("/v1/verify", json={"code": GOOD})
        assert r.json()["verdict"] == "proved"
        failed = (await client.post("/v1/verify", json={"code": BAD})).json()
        assert failed["messages"] and set(failed["messages"][0]) >= {
            "severity", "line", "column", "end_line", "end_column", "text"}


async def test_verify_timeout_field_limits_the_check() -> None:
    app = create_app(settings(lean_timeout=30))
    slow = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=5\n"
    async with asgi_client(app) as client:
        r = await client.post("/v1/verify", json={"code": slow, "timeout": 0.3})
        assert r.status_code == 200 and r.json()["verdict"] == "timeout", r.text
        r = await client.post("/v1/verify", json={"code": GOOD, "timeout": 31})
        assert r.status_code == 422 and error_of(r)["details"][0]["loc"] == ["timeout"]
        r = await client.post("/v1/verify", json={"code": GOOD, "timeout": 0})
        assert r.status_code == 422


async def test_repair_settings_below_zero_are_422() -> None:
    async with asgi_client(create_app(settings())) as client:
        for field in ("rounds", "corrections"):
            r = await client.post("/v1/prove", json={"formal_statement": STATEMENT,
                                                     "search": "repair", field: -1})
            assert r.status_code == 422 and error_of(r)["details"][0]["loc"] == [field]


async def test_bad_best_first_settings_are_422() -> None:
    """`tactics` and `tactic_prompt` as `prover prove --tactics/--tactic-prompt` accept them."""
    async with asgi_client(create_app(settings())) as client:
        for field, value in (("tactics", 0), ("tactics", "8"), ("tactic_prompt", "lean-copilot")):
            r = await client.post("/v1/prove", json={"formal_statement": STATEMENT,
                                                     "search": "bfs", field: value})
            assert r.status_code == 422 and error_of(r)["details"][0]["loc"] == [field], r.text


async def test_a_statement_that_is_not_a_theorem_is_422_with_its_reason() -> None:
    async with asgi_client(create_app(settings())) as client:
        r = await client.post("/v1/verify", json={"code": GOOD, "statement": "def x := 1"})
    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "invalid_request" and "theorem" in error["message"]
    assert error["details"][0]["loc"] == ["statement"]


async def test_200_concurrent_verifies_over_http_are_all_answered_correctly() -> None:
    s = settings(lean_workers=2, verify_concurrency=256, api_rate_limit=10_000)
    app = create_app(s)
    codes = [GOOD if i % 3 else BAD for i in range(200)]
    codes[::7] = [SORRY] * len(codes[::7])
    expected = ["proved" if c == GOOD else "failed" if c == BAD else "incomplete" for c in codes]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with live_client(app, s, limits=limits) as client:
        responses = await asyncio.gather(*(
            client.post("/v1/verify", json={"code": code, "statement": STATEMENT},
                        headers={"X-Request-ID": f"req-{i}"})
            for i, code in enumerate(codes)))
        assert [r.status_code for r in responses] == [200] * 200
        assert [r.json()["verdict"] for r in responses] == expected
        # each answer is the one for its own request
        assert [r.headers["x-request-id"] for r in responses] == [f"req-{i}" for i in range(200)]
        stats = app.state.service.pool.stats()
        assert stats["completed"] == 200 and stats["busy"] == 0 and stats["queued"] == 0
        assert app.state.service.admission.in_use == 0


async def test_a_full_verify_queue_answers_503_with_retry_after_at_once() -> None:
    s = settings(lean_workers=2, verify_concurrency=2, verify_queue=1)
    pool = SignallingPool(s, signal_at=2)
    await pool.start()
    slow = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=1\n"
    app = create_app(s, pool=pool)
    admission = app.state.service.admission
    try:
        async with asgi_client(app) as client:
            first = [asyncio.create_task(client.post("/v1/verify", json={"code": slow}))
                     for _ in range(2)]
            await pool.reached.wait()  # both slots are taken
            waiting = asyncio.create_task(client.post("/v1/verify", json={"code": GOOD}))
            while admission.queued == 0:  # the third request reaches the queue
                await asyncio.sleep(0)
            r = await client.post("/v1/verify", json={"code": GOOD})
            assert r.status_code == 503
            assert error_of(r)["code"] == "overloaded"
            assert "PROVER_VERIFY_QUEUE" in error_of(r)["message"]
            assert int(r.headers["retry-after"]) >= 1
            assert not any(t.done() for t in first)  # refused while they were still running
            done = await asyncio.gather(*first, waiting)  # the queued one was served, not refused
            assert [d.json()["verdict"] for d in done] == ["proved", "proved", "proved"]
            # slots free again
            r = await client.post("/v1/verify", json={"code": GOOD})
            assert r.status_code == 200 and r.json()["verdict"] == "proved"
            metrics = (await client.get("/metrics")).text
            assert "prover_verify_saturated_total 1.0" in metrics
    finally:
        await pool.close()


async def test_a_client_that_leaves_frees_its_verify_slot() -> None:
    s = settings(lean_workers=1, verify_concurrency=1)
    pool = SignallingPool(s)
    await pool.start()
    app = create_app(s, pool=pool)
    gate = app.state.service.admission
    released = asyncio.Event()
    original = gate.release

    def release(started: float) -> None:
        original(started)
        released.set()

    gate.release = release
    try:
        async with live_client(app, s) as client:
            hung = asyncio.create_task(client.post("/v1/verify", json={
                "code": f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=60\n"}))
            await pool.reached.wait()
            hung.cancel()  # closes the connection
            with pytest.raises(asyncio.CancelledError):
                await hung
            await released.wait()
            assert gate.in_use == 0
    finally:
        await pool.close()


# ------------------------------------------------------------------------------ bad input


async def test_every_kind_of_bad_input_gets_its_status_and_the_error_shape(
        redis_url: str) -> None:
    app = create_app(settings(redis_url, api_max_body_kb=1, max_budget=1000))
    json_headers = {"content-type": "application/json"}

    async def chunks() -> Any:
        for _ in range(4):
            yield b" " * 600  # 2,400 bytes, announced by no Content-Length

    async with asgi_client(app) as client:
        cases: list[tuple[str, httpx.Response, int]] = [
            ("malformed JSON", await client.post(
                "/v1/verify", content=b'{"code": "x"', headers=json_headers), 422),
            ("not an object", await client.post("/v1/verify", json=["code"]), 422),
            ("wrong type", await client.post("/v1/verify", json={"code": 5}), 422),
            ("missing field", await client.post("/v1/verify", json={}), 422),
            ("empty code", await client.post("/v1/verify", json={"code": ""}), 422),
            ("unknown field", await client.post("/v1/verify", json={"code": GOOD, "x": 1}),
             422),
            ("invalid UTF-8", await client.post(
                "/v1/verify", content=b'{"code": "\xff\xfe"}', headers=json_headers), 422),
            ("lone surrogate", await client.post(
                "/v1/verify", content=b'{"code": "\\ud800"}', headers=json_headers), 422),
            ("body over the limit", await client.post(
                "/v1/verify", json={"code": "x" * 2000}), 413),
            ("streamed body over the limit", await client.post(
                "/v1/verify", content=chunks(), headers=json_headers), 413),
            ("negative budget", await client.post("/v1/prove", json=prove_body(budget=-1)),
             422),
            ("zero budget", await client.post("/v1/prove", json=prove_body(budget=0)), 422),
            ("huge budget", await client.post("/v1/prove", json=prove_body(budget=10**9)), 422),
            ("budget as a string", await client.post(
                "/v1/prove", json=prove_body(budget="5")), 422),
            ("budget as a float", await client.post(
                "/v1/prove", json=prove_body(budget=5.0)), 422),
            ("unknown search", await client.post(
                "/v1/prove", json=prove_body(search="dfs")), 422),
            ("not a theorem", await client.post(
                "/v1/prove", json=prove_body(formal_statement="def x := 1")), 422),
            ("bad Idempotency-Key", await client.post(
                "/v1/prove", json=prove_body(), headers={"Idempotency-Key": "a b"}), 422),
            ("unknown job", await client.get("/v1/jobs/0123456789abcdef"), 404),
            ("unknown job, cancel", await client.delete("/v1/jobs/0123456789abcdef"), 404),
            ("unknown job, events", await client.get("/v1/jobs/0123456789abcdef/events"), 404),
            ("not a job id", await client.get("/v1/jobs/%2e%2e%2fetc"), 404),
            ("unknown route", await client.get("/v1/nothing"), 404),
            ("wrong method", await client.put("/v1/verify", json={}), 405),
        ]
        for what, response, status in cases:
            assert response.status_code == status, (what, response.status_code, response.text)
            error = error_of(response)
            expected_code = {404: "not_found", 405: "method_not_allowed",
                             413: "payload_too_large", 422: "invalid_request"}[status]
            assert error["code"] == expected_code, (what, error)
        # the budget error names the limit; the decoding errors say what was wrong
        huge = error_of(cases[12][1])
        assert huge["details"][0]["loc"] == ["budget"] and "1000" in huge["message"]
        assert "UTF-8" in error_of(cases[6][1])["message"]
        assert "JSON" in error_of(cases[0][1])["message"]
        # nothing was queued by any of them
        assert (await client.get("/metrics")).text.count('prover_jobs{status="queued"} 0.0') == 1


async def test_an_unhandled_exception_is_a_json_500_with_the_request_id() -> None:
    class BrokenPool(LeanPool):
        async def check(self, request: CheckRequest) -> CheckResult:
            raise RuntimeError("secret internal detail")

    s = settings()
    pool = BrokenPool(s)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("server")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with asgi_client(create_app(s, pool=pool)) as client:
            r = await client.post("/v1/verify", json={"code": GOOD},
                                  headers={"X-Request-ID": "abc-123"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert r.status_code == 500
    error = error_of(r)
    assert error["code"] == "internal_error" and "abc-123" in error["message"]
    assert "secret" not in r.text and "RuntimeError" not in r.text
    # the traceback went to the log, as JSON, under the same request id
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if line["logger"] == "server.errors")
    assert failure["request_id"] == "abc-123" and "secret internal detail" in failure["exc"]
    access = next(line for line in lines if line["logger"] == "server.access")
    assert access["status"] == 500 and access["route"] == "/v1/verify"


async def test_request_ids_are_echoed_or_made_up() -> None:
    async with asgi_client(create_app(settings())) as client:
        given = await client.get("/healthz", headers={"X-Request-ID": "trace.42"})
        made = await client.get("/healthz")
        unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert given.headers["x-request-id"] == "trace.42"
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


# ------------------------------------------------------------------------------ auth, limits


async def test_api_keys_guard_v1_but_not_health_or_metrics(redis_url: str) -> None:
    app = create_app(settings(redis_url, api_keys="k1,k2"))
    async with asgi_client(app) as client:
        missing = await client.post("/v1/verify", json={"code": GOOD})
        wrong = await client.post("/v1/verify", json={"code": GOOD},
                                  headers={"Authorization": "Bearer nope"})
        basic = await client.get("/v1/jobs/x", headers={"Authorization": "Basic azE6"})
        for r in (missing, wrong, basic):
            assert r.status_code == 401, r.text
            assert error_of(r)["code"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        # unauthenticated bodies are not even read: an oversized one is still a 401
        big = await client.post("/v1/verify", json={"code": "x" * 5_000_000})
        assert big.status_code == 401
        for key in ("k1", "k2"):
            r = await client.post("/v1/verify", json={"code": GOOD},
                                  headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and r.json()["verdict"] == "proved"
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200


LIMITED = "/v1/problems"  # any route but the checks; 422 here without a dataset


async def test_rate_limit_is_per_key_with_retry_after() -> None:
    app = create_app(settings(api_keys="k1,k2", api_rate_limit=3))
    k1 = {"Authorization": "Bearer k1"}
    async with asgi_client(app) as client:
        statuses = [(await client.get(LIMITED, headers=k1)).status_code for _ in range(3)]
        assert 429 not in statuses, statuses
        limited = await client.get(LIMITED, headers=k1)
        assert limited.status_code == 429
        assert error_of(limited)["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # another key has its own bucket; health checks are never limited
        other = await client.get(LIMITED, headers={"Authorization": "Bearer k2"})
        assert other.status_code != 429
        for _ in range(5):
            assert (await client.get("/healthz")).status_code in (200, 503)


async def test_checks_are_admitted_by_the_verify_queue_not_the_rate_limit() -> None:
    """A burst of single checks (an RL step through /v1/verify or kimina-client) is refused only
    when the fair queue is full: the per-minute request count does not apply to the checks."""
    app = create_app(settings(api_keys="k1", api_rate_limit=2))
    k1 = {"Authorization": "Bearer k1"}
    async with asgi_client(app) as client:
        singles = await asyncio.gather(*[
            client.post("/v1/verify", json={"code": GOOD}, headers=k1) for _ in range(12)])
        kimina = await client.post("/api/check", headers=k1,
                                   json={"snippets": [{"id": "a", "code": GOOD}]})
        batch = await client.post("/v1/verify/batch", headers=k1,
                                  json={"items": [{"id": 1, "code": GOOD}]})
        assert [r.status_code for r in singles] == [200] * 12
        assert kimina.status_code == 200 and batch.status_code == 200
        assert all(r.json()["verdict"] == "proved" for r in singles)
        # the rest of the API keeps its limit
        others = [(await client.get(LIMITED, headers=k1)).status_code for _ in range(3)]
        assert others[-1] == 429, others


async def test_without_keys_the_rate_limit_is_per_client_address() -> None:
    app = create_app(settings(api_rate_limit=2))
    async with app.router.lifespan_context(app):
        for address in (("10.0.0.1", 1), ("10.0.0.2", 1)):
            transport = httpx.ASGITransport(app=app, client=address)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                got = [(await client.get(LIMITED)).status_code for _ in range(3)]
            assert [s == 429 for s in got] == [False, False, True], (address, got)


# ------------------------------------------------------------------------------ jobs, queue only


async def test_prove_queues_a_job_and_idempotency_keys_return_it(redis_url: str) -> None:
    app = create_app(settings(redis_url, api_keys="k1,k2"))
    k1 = {"Authorization": "Bearer k1"}
    async with asgi_client(app) as client:
        r = await client.post("/v1/prove", json=prove_body(), headers=k1)
        assert r.status_code == 202 and set(r.json()) == {"job_id"}
        job_id = r.json()["job_id"]
        assert r.headers["location"] == f"/v1/jobs/{job_id}"
        job = (await client.get(f"/v1/jobs/{job_id}", headers=k1)).json()
        assert job["job_id"] == job_id and job["status"] == "queued" and job["result"] is None
        assert job["progress"] == {"samples": 0, "budget": 4, "tree_size": 0}

        keyed = {**k1, "Idempotency-Key": "order-7"}
        first = await client.post("/v1/prove", json=prove_body(), headers=keyed)
        again = await client.post("/v1/prove", json=prove_body(), headers=keyed)
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.json()["job_id"] == again.json()["job_id"] != job_id
        # the same key with another request is a client bug worth telling
        clash = await client.post("/v1/prove", json=prove_body(budget=5), headers=keyed)
        assert clash.status_code == 409 and error_of(clash)["code"] == "idempotency_conflict"
        # keys are scoped per API key: k2's "order-7" is another job
        other = await client.post("/v1/prove", json=prove_body(), headers={
            "Authorization": "Bearer k2", "Idempotency-Key": "order-7"})
        assert other.status_code == 202 and other.json()["job_id"] != first.json()["job_id"]

        # default budget when none is given
        default = await client.post("/v1/prove", json={"formal_statement": STATEMENT},
                                    headers=k1)
        view = (await client.get(f"/v1/jobs/{default.json()['job_id']}", headers=k1)).json()
        assert view["progress"]["budget"] == 128
        metrics = (await client.get("/metrics")).text
        assert 'prover_jobs_submitted_total{outcome="replayed"} 1.0' in metrics
        assert "prover_jobs_queue_depth 4.0" in metrics


async def test_cancelling_a_queued_job(redis_url: str) -> None:
    async with asgi_client(create_app(settings(redis_url))) as client:
        job_id = (await client.post("/v1/prove", json=prove_body())).json()["job_id"]
        r = await client.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        again = await client.delete(f"/v1/jobs/{job_id}")  # safe to retry
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "cancelled"
        # its event stream is complete: queued, cancelled, then the result
        events = (await client.get(f"/v1/jobs/{job_id}/events")).text
        assert events.startswith("retry: ")
        data = [json.loads(line[5:]) for line in events.splitlines() if line.startswith("data:")]
        assert [d["type"] for d in data] == ["status", "status", "result"]
        assert data[-1]["status"] == "cancelled"
        r = await client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x-y"})
        assert r.status_code == 422


# ------------------------------------------------------------------------------ health, metrics


async def test_healthz_reports_workers_backend_and_redis(redis_server: RedisServer,
                                                         redis_url: str) -> None:
    app = create_app(settings(redis_url, lean_workers=2, model_backend="openai",
                              openai_base_url="http://127.0.0.1:9",
                              model_profile="goedel-v2"))
    async with asgi_client(app) as client:
        r = await client.get("/healthz")
        assert r.status_code == 200
        body = r.json()
        assert [(e["name"], e["lean_version"], e["default"])
                for e in body.pop("environments")] == [("v4_9", "4.9.0-rc1", True)]
        # The page preselects the search that suits the workers' prover profile.
        assert body == {"status": "ok", "lean_workers": 2, "model_backend": "openai",
                        "model_profile": "goedel-v2", "default_search": "repair",
                        "redis": True}
        redis_server.stop()
        try:
            down = await client.get("/healthz")
            assert down.status_code == 503
            assert down.json()["status"] == "degraded" and down.json()["redis"] is False
            # the job API says so in its own words; verify does not need Redis at all
            r = await client.post("/v1/prove", json=prove_body())
            assert r.status_code == 503 and error_of(r)["code"] == "unavailable"
            assert "retry-after" in r.headers
            assert (await client.post("/v1/verify", json={"code": GOOD})).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert "prover_redis_up 0.0" in metrics and "prover_jobs_queue_depth" not in metrics
        finally:
            redis_server.start()


async def test_metrics_cover_requests_pool_verdicts_and_jobs(redis_url: str) -> None:
    async with asgi_client(create_app(settings(redis_url, lean_workers=2))) as client:
        for code in (GOOD, GOOD, BAD):
            await client.post("/v1/verify", json={"code": code})
        job = (await client.post("/v1/prove", json=prove_body())).json()["job_id"]
        await client.delete(f"/v1/jobs/{job}")
        await client.post("/v1/prove", json=prove_body())
        await client.get("/v1/jobs/nothere")
        r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'prover_http_requests_total{method="POST",route="/v1/verify",status="200"} 3.0',
        'prover_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"} 1.0',
        'prover_http_request_duration_seconds_count{method="POST",route="/v1/verify"} 3.0',
        'prover_verify_verdicts_total{verdict="proved"} 2.0',
        'prover_verify_verdicts_total{verdict="failed"} 1.0',
        'prover_lean_workers{state="busy"} 0.0',
        'prover_lean_workers{state="idle"} 2.0',
        'prover_lean_checks_total{verdict="proved"} 2.0',
        "prover_redis_up 1.0",
        "prover_jobs_queue_depth 1.0",
        'prover_jobs{status="queued"} 1.0',
        'prover_jobs_finished_total{status="cancelled"} 1.0',
        'prover_jobs_submitted_total{outcome="created"} 2.0',
        "prover_http_requests_in_flight 1.0",  # this scrape
    ):
        assert line in text, line


async def test_openapi_documents_every_endpoint_and_its_errors() -> None:
    async with asgi_client(create_app(settings())) as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {("/v1/verify", "post"), ("/v1/prove", "post"), ("/v1/jobs/{job_id}", "get"),
                ("/v1/jobs/{job_id}", "delete"), ("/v1/jobs/{job_id}/events", "get"),
                ("/healthz", "get"), ("/metrics", "get"),
                # the web page's (server/web.py)
                ("/v1/jobs", "get"), ("/v1/jobs/{job_id}/tree", "get"), ("/v1/problems", "get"),
                ("/v1/problems/{dataset}/{name}", "get"), ("/v1/datasets", "get"),
                ("/v1/complete", "post"),  # the editor tactics' (server/complete.py)
                ("/v1/verify/batch", "post"),  # server/batch.py
                # Kimina Lean Server's (server/kimina.py)
                ("/api/check", "post"), ("/verify", "post"), ("/health", "get"),
                # tactic sessions (server/sessions.py)
                ("/v1/sessions", "post"), ("/v1/sessions/{session_id}/tactics", "post"),
                ("/v1/sessions/{session_id}", "delete")}
    assert {(p, m) for p, ops in paths.items() for m in ops} == expected
    error_ref = "#/components/schemas/ErrorResponse"
    for path, method in expected:
        op = paths[path][method]
        if path.startswith("/v1/"):
            for status in ("401", "429", "500"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema["$ref"] == error_ref, (path, method, status)
            assert op["security"] == [{"HTTPBearer": []}]
    verify = paths["/v1/verify"]["post"]["responses"]
    assert {"200", "413", "422", "503"} <= set(verify)
    assert verify["422"]["content"]["application/json"]["schema"]["$ref"] == error_ref
    prove = paths["/v1/prove"]["post"]["responses"]
    assert {"200", "202", "409", "413", "422"} <= set(prove)
    assert "Idempotency-Key" in {p["name"] for p in paths["/v1/prove"]["post"]["parameters"]}
    assert "text/event-stream" in paths["/v1/jobs/{job_id}/events"]["get"]["responses"][
        "200"]["content"]
    for path, method in expected:  # every error answer has the one error shape
        for status, response in paths[path][method]["responses"].items():
            if int(status) >= 400 and path != "/healthz":
                schema = response["content"]["application/json"]["schema"]
                assert schema["$ref"] == error_ref, (path, method, status)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["VerifyResponse"]["required"]) == VERIFY_KEYS
    assert {"job_id", "status", "progress", "result"} <= set(schemas["JobView"]["properties"])
