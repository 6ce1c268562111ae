"""`POST /v1/verify/batch` as an RL trainer uses it: many proofs in one request, results in
input order or streamed as NDJSON, malformed items and timeouts confined to their own result.

Lean is the fake REPL: a proof without `fail` or `sorry` is proved; `-- fake:sleep=S` is slow.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from server.app import create_app
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

VERDICT_KEYS = {"id", "verdict", "messages", "sorries", "axioms", "rejection", "error", "time_s",
                "cached"}


def items(*codes: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "code": c, **extra} for i, c in enumerate(codes)]


async def test_a_batch_answers_every_item_in_input_order_with_its_verdict() -> None:
    s = settings(lean_workers=2, lean_timeout=30)
    app = create_app(s)
    slow = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=5\n"
    other = "theorem t1 (a : Nat) : a + 0 = a := by"
    body = {"items": [
        {"id": "good", "code": GOOD, "statement": STATEMENT},
        {"id": "bad", "code": BAD},
        {"id": 7, "code": SORRY},
        {"id": "cheat", "code": f"{HEADER}axiom cheat : False\n{STATEMENT}\n  exact cheat.elim\n"},
        {"id": "wrong-statement", "code": GOOD, "statement": other},
        {"id": "slow", "code": slow, "timeout": 0.3},
        {"id": "no-code"},
        {"id": "typo", "code": GOOD, "statment": STATEMENT},
        {"id": "not-a-theorem", "code": GOOD, "statement": "def x := 1"},
        {"id": "too-long", "code": GOOD, "timeout": 31},
        "not an object",
        {"id": "last", "code": GOOD, "cache": False},
    ]}
    async with asgi_client(app) as client:
        r = await client.post("/v1/verify/batch", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == [
        "good", "bad", 7, "cheat", "wrong-statement", "slow", "no-code", "typo",
        "not-a-theorem", "too-long", None, "last"]
    verdicts = {x["id"]: x["verdict"] for x in results if "verdict" in x}
    assert verdicts == {"good": "proved", "bad": "failed", 7: "incomplete", "cheat": "rejected",
                        "wrong-statement": "rejected", "slow": "timeout", "last": "proved"}
    for x in results:
        if "verdict" in x:
            assert set(x) == VERDICT_KEYS and x["cached"] is False
        else:  # a malformed item: its own error, the batch goes on
            assert set(x) == {"id", "error"} and x["error"]["code"] == "invalid_request"
    errors = {x["id"]: x["error"]["message"] for x in results if "verdict" not in x}
    assert errors["no-code"].startswith("code:")
    assert "statment" in errors["typo"]
    assert "theorem" in errors["not-a-theorem"]
    assert "PROVER_LEAN_TIMEOUT" in errors["too-long"]


async def test_empty_oversized_and_duplicate_batches_are_refused_whole() -> None:
    app = create_app(settings(max_batch=3))
    async with asgi_client(app) as client:
        empty = await client.post("/v1/verify/batch", json={"items": []})
        big = await client.post("/v1/verify/batch", json={"items": items(GOOD, GOOD, GOOD, GOOD)})
        twice = await client.post("/v1/verify/batch", json={"items": [
            {"id": "a", "code": GOOD}, {"id": "b", "code": GOOD}, {"id": "a", "code": BAD}]})
        not_a_list = await client.post("/v1/verify/batch", json={"items": {"id": "a"}})
        assert app.state.service.pool.stats()["completed"] == 0  # nothing was checked
    assert empty.status_code == 422 and "empty" in error_of(empty)["message"]
    assert big.status_code == 413
    assert error_of(big)["code"] == "batch_too_large" and "PROVER_MAX_BATCH" in big.text
    assert twice.status_code == 422 and "'a'" in error_of(twice)["message"]
    assert not_a_list.status_code == 422


async def test_results_stream_as_ndjson_as_each_item_finishes() -> None:
    s = settings(lean_workers=2)
    app = create_app(s)
    slow = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=3\n"
    body = {"items": [{"id": "slow", "code": slow}, {"id": "fast", "code": GOOD},
                      {"id": "broken"}]}
    async with live_client(app, s) as client, client.stream(
            "POST", "/v1/verify/batch", json=body,
            headers={"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    assert [(x["id"], x["index"]) for x in lines] == [("broken", 2), ("fast", 1), ("slow", 0)]
    assert [x.get("verdict") for x in lines] == [None, "proved", "proved"]


async def test_batch_items_share_the_header_imports_of_the_pool() -> None:
    s = settings(lean_workers=2)
    app = create_app(s)
    codes = [f"{HEADER}theorem t{i} (a : Nat) : a = a := by\n  rfl\n" for i in range(24)]
    async with asgi_client(app) as client:
        r = await client.post("/v1/verify/batch", json={"items": items(*codes)})
        stats = app.state.service.pool.stats()
    assert [x["verdict"] for x in r.json()["results"]] == ["proved"] * 24
    assert stats["header_elaborations"] <= 2  # once per worker, not once per item


async def test_a_streaming_client_that_leaves_frees_everything_it_had_queued() -> None:
    s = settings(lean_workers=1, verify_concurrency=2)
    app = create_app(s)
    service = app.state.service
    slow = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=0.2\n"
    body = {"items": [{"id": i, "code": GOOD if i == 0 else slow} for i in range(500)]}
    async with live_client(app, s) as client:
        async with client.stream("POST", "/v1/verify/batch", json=body,
                                 headers={"Accept": "application/x-ndjson"}) as r:
            lines = r.aiter_lines()
            first = json.loads(await anext(lines))
            assert first["verdict"] == "proved"
        # the stream is closed: the server drops the rest of the batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while service.admission.queued or service.admission.in_use:
            assert loop.time() < deadline, service.admission.stats()
            await asyncio.sleep(0.01)
        assert service.pool.completed < 20 and service.pool.stats()["queued"] == 0


async def test_batch_items_say_when_their_verdict_was_cached_and_may_opt_out(
        redis_url: str) -> None:
    app = create_app(settings(redis_url))
    unique = f"-- {uuid.uuid4()}\n"  # the Redis of other tests may know GOOD and BAD already
    body = {"items": [{"id": "a", "code": GOOD + unique}, {"id": "b", "code": BAD + unique}]}
    async with asgi_client(app) as client:
        first = (await client.post("/v1/verify/batch", json=body)).json()["results"]
        again = (await client.post("/v1/verify/batch", json=body)).json()["results"]
        fresh = (await client.post("/v1/verify/batch", json={"items": [
            {**item, "cache": False} for item in body["items"]]})).json()["results"]
    assert [(r["verdict"], r["cached"]) for r in first] == [("proved", False), ("failed", False)]
    assert [(r["verdict"], r["cached"]) for r in again] == [("proved", True), ("failed", True)]
    assert [(r["verdict"], r["cached"]) for r in fresh] == [("proved", False), ("failed", False)]
