"""Fair admission: checks past the verify slots wait in a bounded queue, served round-robin
between API keys; refusals only when the queue is full or the wait too long; a client that leaves
takes everything it had queued with it. Unit tests on `Admission`, then the service over HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from server.admission import Admission, Refused
from server.app import create_app
from tests.server_support import BAD, GOOD, HEADER, SORRY, STATEMENT, live_client, settings

KEYS = "key-a,key-b"


async def until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait for a condition the server reaches on its own (a test helper, not a timing claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------------ Admission


async def test_a_freed_slot_goes_to_the_next_key_in_turn_not_to_the_longest_queue() -> None:
    admission = Admission(slots=1, depth=100, max_wait_s=1e9)
    held = await admission.acquire("a")
    order: list[str] = []

    async def take(key: str) -> None:
        started = await admission.acquire(key)
        order.append(key)
        admission.release(started)

    tasks = [asyncio.create_task(take("a")) for _ in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(take("b")))
    await asyncio.sleep(0)
    assert admission.queued == 6
    admission.release(held)
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "a", "a", "a", "a"]  # b's one check waited for one of a's
    assert admission.in_use == 0 and admission.queued == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_its_turn_passes_on() -> None:
    admission = Admission(slots=1, depth=100, max_wait_s=1e9)
    held = await admission.acquire("a")
    gone = asyncio.create_task(admission.acquire("b"))
    stays = asyncio.create_task(admission.acquire("c"))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert admission.queued == 1 and admission.stats().keys_waiting == 1
    admission.release(held)
    admission.release(await stays)
    assert admission.in_use == 0 and admission.queued == 0


async def test_refusal_only_when_the_queue_is_full_or_the_wait_too_long() -> None:
    admission = Admission(slots=2, depth=3, max_wait_s=1e9)
    held = [await admission.acquire("a") for _ in range(2)]
    waiting = [asyncio.create_task(admission.acquire("a")) for _ in range(3)]
    await asyncio.sleep(0)
    assert admission.queued == 3  # below the depth nothing was refused
    with pytest.raises(Refused, match="PROVER_VERIFY_QUEUE") as full:
        await admission.acquire("b")
    assert full.value.retry_after_s >= 1
    patient = asyncio.create_task(admission.acquire("b", patient=True))  # a batch item waits
    await asyncio.sleep(0)
    assert not patient.done()
    for started in held:
        admission.release(started)
    for task in [*waiting, patient]:
        admission.release(await task)
    assert admission.in_use == 0 and admission.queued == 0

    slow = Admission(slots=1, depth=100, max_wait_s=5)
    slow._avg_hold_s = 4.0  # checks have been taking 4 s
    first = await slow.acquire("a")
    second = asyncio.create_task(slow.acquire("a"))  # expected wait 4 s: admitted
    await asyncio.sleep(0)
    with pytest.raises(Refused, match="PROVER_VERIFY_QUEUE_WAIT_S"):
        await slow.acquire("a")  # 8 s
    slow.release(first)
    slow.release(await second)


# ------------------------------------------------------------------------------ over HTTP


async def test_one_keys_huge_batch_does_not_starve_another_keys_single_proof() -> None:
    s = settings(lean_workers=1, verify_concurrency=2, api_keys=KEYS, api_rate_limit=10_000)
    app = create_app(s)
    service = app.state.service
    slowish = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=0.05\n"
    batch = {"items": [{"id": i, "code": slowish} for i in range(10_000)]}
    a = {"Authorization": "Bearer key-a"}
    limits = httpx.Limits(max_connections=64)
    async with live_client(app, s, limits=limits) as client:
        flood = [asyncio.create_task(client.post("/v1/verify/batch", json=batch, headers=a))]
        flood += [asyncio.create_task(client.post("/v1/verify", json={"code": slowish},
                                                  headers=a)) for _ in range(30)]
        await until(lambda: service.admission.queued >= 20)  # key a's checks are waiting
        before = service.pool.completed
        r = await client.post("/v1/verify", json={"code": GOOD},
                              headers={"Authorization": "Bearer key-b"})
        served_meanwhile = service.pool.completed - before
        assert r.status_code == 200 and r.json()["verdict"] == "proved"
        # b waited for a few of a's checks (one turn in the queue, then a's checks already in
        # the pool; a margin for the ones finishing while b's request travels), not for a's
        # queue of 30 singles and a 10,000-item batch
        assert served_meanwhile <= 10, served_meanwhile
        assert service.admission.refused == 0

        # a disconnects: everything it still had queued goes, nothing more is checked for it
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        await until(lambda: service.admission.queued == 0 and service.admission.in_use == 0)
        done = service.pool.completed
        assert done < 200 and service.pool.stats()["queued"] == 0
        r = await client.post("/v1/verify", json={"code": GOOD}, headers=a)
        assert r.status_code == 200 and r.json()["verdict"] == "proved"
        assert service.pool.completed <= done + 1 + s.verify_slots  # a's checks still running


def _burst_codes(n: int) -> tuple[list[str], list[str]]:
    codes = [GOOD if i % 3 else BAD for i in range(n)]
    codes[::7] = [SORRY] * len(codes[::7])
    expected = ["proved" if c == GOOD else "failed" if c == BAD else "incomplete" for c in codes]
    return codes, expected


async def test_a_burst_below_the_queue_depth_is_all_answered_through_every_api() -> None:
    """The issue's check: with the default slots (4 per worker) and a queue deeper than the
    burst, 120 simultaneous requests are all answered, none refused: our API and Kimina's,
    with httpx and with urllib (kimina-client's own burst is in test_kimina_compat.py)."""
    s = settings(lean_workers=2, verify_queue=200, api_rate_limit=10_000)
    assert s.verify_slots == 8
    app = create_app(s)
    codes, expected = _burst_codes(120)
    kimina_status = {"proved": True, "failed": False, "incomplete": False}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    def ours(answer: dict[str, Any]) -> object:
        return answer["verdict"]

    def kimina(answer: dict[str, Any]) -> object:  # valid in Kimina's terms (is_valid)
        response = answer["results"][0]["response"]
        return not any(m["severity"] == "error" for m in response["messages"]) and not (
            response.get("sorries"))

    apis: list[tuple[str, Callable[[int, str], dict[str, Any]], Callable[..., object], list[
        object]]] = [
        ("/v1/verify", lambda i, c: {"code": c}, ours, list(expected)),
        ("/api/check", lambda i, c: {"snippets": [{"id": str(i), "code": c}]}, kimina,
         [kimina_status[v] for v in expected]),
        ("/verify", lambda i, c: {"codes": [{"custom_id": i, "proof": c}]}, kimina,
         [kimina_status[v] for v in expected]),
    ]
    async with live_client(app, s, limits=limits) as client:
        base = str(client.base_url).rstrip("/")
        for path, body, read, want in apis:
            responses = await asyncio.gather(*(
                client.post(path, json=body(i, c)) for i, c in enumerate(codes)))
            assert [r.status_code for r in responses] == [200] * len(codes), path
            assert [read(r.json()) for r in responses] == want, path

            def post(i: int, code: str, path: str = path,
                     body: Callable[[int, str], dict[str, Any]] = body) -> tuple[int, object]:
                request = urllib.request.Request(
                    base + path, data=json.dumps(body(i, code)).encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=120) as answer:
                    return answer.status, json.loads(answer.read())

            loop = asyncio.get_running_loop()
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(codes)) as threads:
                answers = await asyncio.gather(*(
                    loop.run_in_executor(threads, post, i, c) for i, c in enumerate(codes)))
            assert [status for status, _ in answers] == [200] * len(codes), path
            assert [read(a) for _, a in answers] == want, path
    assert app.state.service.admission.refused == 0
