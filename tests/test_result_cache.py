"""Results cache and in-flight sharing: a resubmitted proof keeps its verdict, and says so.

Kimina Lean Server's users see verdicts flip when they resubmit (its issue 62). Here a verdict is
remembered only when definitive and only under a key holding everything that decides it; a
timeout is checked again; a request can opt out; and identical checks in flight at once share
one Lean run.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from prover.lean import CheckRequest, LeanPool, Verdict
from prover.lean.results import MemoryResultCache, environment_identity, result_key
from server.jobs import connect
from server.result_cache import RedisResultCache
from tests.conftest import fake_settings

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


def problem(i: int, tactic: str) -> CheckRequest:
    statement = f"theorem p{i} (x : ℕ) (h : x = {i}) : x + 0 = {i} := by"
    return CheckRequest(code=f"{HEADER}{statement}\n  {tactic}\n", statement=statement)


def weakened(i: int) -> CheckRequest:
    statement = f"theorem p{i} (x : ℕ) (h : x = {i}) : x + 0 = {i} := by"
    code = f"{HEADER}theorem p{i} (x : ℕ) (h : x = {i}) : True := by\n  trivial\n"
    return CheckRequest(code=code, statement=statement)


TACTICS = {"simp [h]": Verdict.PROVED, "fail": Verdict.FAILED, "sorry": Verdict.INCOMPLETE}


def mixed_load(start: int, n: int) -> list[tuple[CheckRequest, Verdict]]:
    load = []
    for i in range(start, start + n):
        if i % 4 == 3:
            load.append((weakened(i), Verdict.REJECTED))
        else:
            tactic = list(TACTICS)[i % 3]
            load.append((problem(i, tactic), TACTICS[tactic]))
    return load


async def test_verdicts_never_flip_on_resubmission_between_other_proofs() -> None:
    first_round = mixed_load(0, 24)
    async with LeanPool(fake_settings(lean_workers=3)) as pool:
        first = await asyncio.gather(*(pool.check(r) for r, _ in first_round))
        assert [r.verdict for r in first] == [v for _, v in first_round]
        assert not any(r.cached for r in first)
        # The same proofs again, shuffled in among proofs never seen, twice over.
        for round_no in range(2):
            fresh = mixed_load(100 + 24 * round_no, 24)
            again = [(r, v, True) for r, v in first_round] + [(r, v, False) for r, v in fresh]
            random.Random(round_no).shuffle(again)
            results = await asyncio.gather(*(pool.check(r) for r, _, _ in again))
            for (req, verdict, seen), result in zip(again, results, strict=True):
                assert result.verdict is verdict, (req.code, result)
                assert result.cached is seen
                assert result.to_json()["cached"] is seen
        assert pool.stats()["cache_hits"] == 48


async def test_a_cached_answer_is_the_same_answer() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        fresh = await pool.check(problem(1, "sorry"))
        hit = await pool.check(problem(1, "sorry"))
    assert hit.cached and not fresh.cached
    same = ("verdict", "messages", "sorries", "axioms", "rejection", "error")
    assert {k: v for k, v in hit.to_json().items() if k in same} == {
        k: v for k, v in fresh.to_json().items() if k in same
    }


async def test_timeouts_are_checked_again_and_opting_out_runs_lean(commands: list[str]) -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        slow = problem(1, "simp [h] -- fake:sleep=1")
        short = CheckRequest(code=slow.code, statement=slow.statement, timeout=0.3)
        assert (await pool.check(short)).verdict is Verdict.TIMEOUT
        again = await pool.check(short)
        assert again.verdict is Verdict.TIMEOUT and not again.cached
        proved = await pool.check(slow)  # the default timeout: now it proves
        assert proved.verdict is Verdict.PROVED and not proved.cached
        assert (await pool.check(slow)).cached
        before = len(commands)
        opted_out = await pool.check(
            CheckRequest(code=slow.code, statement=slow.statement, use_cache=False)
        )
        assert opted_out.verdict is Verdict.PROVED and not opted_out.cached
        assert len(commands) == before + 1  # Lean ran


async def test_the_key_holds_everything_that_decides_the_verdict(tmp_path: Path) -> None:
    code, statement = problem(1, "simp [h]").code, problem(1, "simp [h]").statement
    key = result_key("env", code, statement, allow_native_decide=False)
    assert key != result_key("env", code + " ", statement, allow_native_decide=False)
    assert key != result_key("env", code, None, allow_native_decide=False)
    assert key != result_key("env", code, statement, allow_native_decide=True)
    assert key != result_key("other env", code, statement, allow_native_decide=False)
    assert key != result_key("env", code, statement, allow_native_decide=False,
                             context="import Mathlib\nnamespace Foo\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "lean-toolchain").write_text("leanprover/lean4:v4.9.0\n")
    settings = fake_settings(lean_workspace=workspace)
    before = environment_identity(settings)
    assert environment_identity(settings) == before
    (workspace / "lean-toolchain").write_text("leanprover/lean4:v4.15.0\n")
    assert environment_identity(settings) != before
    assert environment_identity(fake_settings(lean_workspace=tmp_path)) != before
    # Through the pool: another statement for the same code is checked, not looked up.
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        assert (await pool.check(problem(1, "simp [h]"))).verdict is Verdict.PROVED
        other = CheckRequest(code=code, statement=statement.replace("= 1 :=", "= 2 :=")
                             .replace("x = 1", "x = 2"))
        result = await pool.check(other)
        assert result.verdict is Verdict.REJECTED and not result.cached


async def test_the_memory_cache_is_bounded() -> None:
    cache = MemoryResultCache(2)
    async with LeanPool(fake_settings(lean_workers=1), cache=cache) as pool:
        for i in range(4):
            await pool.check(problem(i, "simp [h]"))
        assert len(cache) == 2
        assert not (await pool.check(problem(0, "simp [h]"))).cached  # evicted
        assert (await pool.check(problem(3, "simp [h]"))).cached


async def test_identical_checks_in_flight_share_one_lean_run(commands: list[str]) -> None:
    async with LeanPool(fake_settings(lean_workers=2, result_cache_size=0)) as pool:
        assert pool.cache is None
        await asyncio.gather(*(pool.check(problem(i, "simp [h] -- fake:sleep=0.2"))
                               for i in (10, 11)))  # both workers hold the header from here on
        before = len(commands)
        same = problem(1, "simp [h] -- fake:sleep=0.3")
        results = await asyncio.gather(*(pool.check(same) for _ in range(6)),
                                       pool.check(problem(2, "fail")))
        assert [r.verdict for r in results] == [Verdict.PROVED] * 6 + [Verdict.FAILED]
        assert not any(r.cached for r in results)
        assert len(commands) - before == 2  # one run for the six, one for the other
        assert pool.stats()["deduplicated"] == 5
        # Another timeout is another check.
        longer = CheckRequest(code=same.code, statement=same.statement, timeout=20)
        await asyncio.gather(pool.check(same), pool.check(longer))
        assert len(commands) - before == 4


async def test_a_caller_leaving_does_not_cancel_the_shared_run() -> None:
    async with LeanPool(fake_settings(lean_workers=1, result_cache_size=0)) as pool:
        same = problem(1, "simp [h] -- fake:sleep=0.3")
        leaver = asyncio.ensure_future(pool.check(same))
        stayer = asyncio.ensure_future(pool.check(same))
        await asyncio.sleep(0.1)
        leaver.cancel()
        assert (await stayer).verdict is Verdict.PROVED
        assert leaver.cancelled()


# ------------------------------------------------------------------------ shared through Redis


async def test_pools_share_verdicts_through_redis(redis_url: str) -> None:
    settings = fake_settings(lean_workers=1, redis_url=redis_url)
    async with LeanPool(settings, cache=RedisResultCache.from_settings(settings)) as api:
        first = await api.check(problem(7, "sorry"))
        assert first.verdict is Verdict.INCOMPLETE and not first.cached
    async with LeanPool(settings, cache=RedisResultCache.from_settings(settings)) as worker:
        again = await worker.check(problem(7, "sorry"))
        assert again.verdict is Verdict.INCOMPLETE and again.cached
        assert {**again.to_json(), "time_s": 0, "cached": False} == {
            **first.to_json(), "time_s": 0}
        timed_out = CheckRequest(code=problem(8, "simp [h] -- fake:sleep=1").code,
                                 statement=problem(8, "simp [h]").statement, timeout=0.3)
        assert (await worker.check(timed_out)).verdict is Verdict.TIMEOUT
    client = connect(redis_url)
    try:
        assert await client.zcard("prover:results") == 1  # the timeout was not kept
    finally:
        await client.aclose()


async def test_the_redis_cache_is_bounded(redis_url: str) -> None:
    client = connect(redis_url)
    cache = RedisResultCache(client, capacity=3, prefix="bounded")
    async with LeanPool(fake_settings(lean_workers=1), cache=cache) as pool:
        for i in range(5):
            await pool.check(problem(i, "simp [h]"))
        assert await client.zcard("bounded:results") == 3
        assert len(await client.keys("bounded:result:*")) == 3
        assert not (await pool.check(problem(0, "simp [h]"))).cached
        assert (await pool.check(problem(4, "simp [h]"))).cached


async def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    from tests.fixtures.redis_server import free_port

    settings = fake_settings(lean_workers=1, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with LeanPool(settings, cache=RedisResultCache.from_settings(settings)) as pool:
        for _ in range(2):
            result = await pool.check(problem(1, "simp [h]"))
            assert result.verdict is Verdict.PROVED and not result.cached
        assert pool.stats()["cache_errors"] == 4  # two lookups, two stores


async def test_two_api_processes_share_the_cache_and_requests_can_opt_out(redis_url: str) -> None:
    from server.app import create_app
    from tests.server_support import GOOD, STATEMENT, asgi_client, settings

    app_settings = settings(redis_url, lean_workers=1)
    body = {"code": GOOD, "statement": STATEMENT}
    async with asgi_client(create_app(app_settings)) as first:
        assert (await first.post("/v1/verify", json=body)).json()["cached"] is False
    async with asgi_client(create_app(app_settings)) as second:
        hit = (await second.post("/v1/verify", json=body)).json()
        assert hit["verdict"] == "proved" and hit["cached"] is True
        fresh = (await second.post("/v1/verify", json={**body, "cache": False})).json()
        assert fresh["verdict"] == "proved" and fresh["cached"] is False
