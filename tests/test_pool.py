"""The verifier pool under load and under failure, driven by the fake REPL.

Tests that read the fake's stats file run unsandboxed: the sandbox's /tmp is private, which is
the point of it.

What a user would notice: every check gets exactly one truthful verdict, a misbehaving REPL costs
only the check it held, headers are elaborated once per worker, and nothing is left running.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psutil
import pytest

from prover.lean import CheckRequest, LeanPool, PoolClosed, Verdict
from prover.lean.process import ReplStartError
from tests.conftest import fake_cmd, fake_settings

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
STATEMENT = "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by"


def proof(tactics: str, header: str = HEADER) -> CheckRequest:
    return CheckRequest(code=f"{header}{STATEMENT}\n  {tactics}\n", statement=STATEMENT)


def count_imports(stats: Path) -> int:
    if not stats.exists():
        return 0
    return sum(1 for line in stats.read_text().splitlines() if line.startswith("import"))


async def test_mixed_load_gets_the_right_verdict_for_every_check() -> None:
    behaviours = {
        "norm_num": Verdict.PROVED,
        "linarith fail": Verdict.FAILED,
        "sorry": Verdict.INCOMPLETE,
        "norm_num -- fake:hang": Verdict.TIMEOUT,
        "norm_num -- fake:crash": Verdict.SYSTEM_ERROR,
        "norm_num -- fake:garbage": Verdict.SYSTEM_ERROR,
        "norm_num -- fake:die": Verdict.SYSTEM_ERROR,
        "norm_num -- fake:abort": Verdict.SYSTEM_ERROR,
        "norm_num -- fake:sleep=0.2": Verdict.PROVED,
    }
    plan = [tactic for _ in range(5) for tactic in behaviours]
    settings = fake_settings(lean_workers=3, lean_timeout=1.5)
    async with LeanPool(settings) as pool:
        # Distinct copies (a comment tells them apart): identical checks would share one run.
        results = await asyncio.gather(
            *(pool.check(proof(f"{t}\n  -- copy {i}")) for i, t in enumerate(plan))
        )
        for tactic, result in zip(plan, results, strict=True):
            assert result.verdict is behaviours[tactic], (tactic, result)
            if result.verdict is Verdict.SYSTEM_ERROR:
                assert result.error, tactic
        stats = pool.stats()
        assert stats["completed"] == len(plan)
        assert stats["queued"] == 0 and stats["busy"] == 0
        assert stats["restarts"] >= 5 * 5  # every hang/crash/garbage/die/abort replaced a worker
        # the pool still works after all that
        assert (await pool.check(proof("norm_num"))).verdict is Verdict.PROVED


async def test_crash_reports_the_reason_and_stderr() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        died = await pool.check(proof("norm_num -- fake:die"))
        aborted = await pool.check(proof("norm_num -- fake:abort"))
    assert died.verdict is Verdict.SYSTEM_ERROR
    assert "status 1" in (died.error or "") and "simulated failure" in (died.error or "")
    assert "Stack overflow" in (aborted.error or "")


async def test_timeout_kills_the_worker_and_the_next_check_runs(tmp_path: Path) -> None:
    settings = fake_settings(
        fake_cmd(stats=str(tmp_path / "s")), lean_workers=1, lean_sandbox="none"
    )
    async with LeanPool(settings) as pool:
        first_pid = pool.stats()["pids"][0]
        slow = await pool.check(
            CheckRequest(code=f"{HEADER}{STATEMENT}\n  norm_num -- fake:hang\n", timeout=0.5)
        )
        assert slow.verdict is Verdict.TIMEOUT and "0.5 s" in (slow.error or "")
        assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == "zombie"
        ok = await pool.check(proof("norm_num"))
        assert ok.verdict is Verdict.PROVED
        assert pool.stats()["pids"][0] != first_pid


async def test_header_is_elaborated_once_per_worker(tmp_path: Path) -> None:
    stats = tmp_path / "stats"
    settings = fake_settings(
        fake_cmd(stats=str(stats), import_delay="0.05"), lean_workers=2, lean_sandbox="none"
    )
    other_header = HEADER.replace("open BigOperators", "open Finset BigOperators")
    async with LeanPool(settings) as pool:
        requests = [proof("norm_num") for _ in range(60)]
        requests += [proof("norm_num", other_header) for _ in range(20)]
        results = await asyncio.gather(*(pool.check(r) for r in requests))
        assert all(r.verdict is Verdict.PROVED for r in results)
        assert pool.stats()["header_elaborations"] <= 2
    # what the REPL processes themselves saw: one Mathlib import per worker, not one per check
    assert 1 <= count_imports(stats) <= 2


async def test_checks_go_to_the_worker_holding_their_header(tmp_path: Path) -> None:
    stats = tmp_path / "stats"
    settings = fake_settings(fake_cmd(stats=str(stats)), lean_workers=2, lean_sandbox="none")
    core = "set_option maxHeartbeats 400000\n\n"  # no imports: a different import set
    async with LeanPool(settings) as pool:
        for _ in range(10):  # sequential, alternating headers: affinity keeps both cached
            assert (await pool.check(proof("norm_num"))).proved
            assert (await pool.check(proof("norm_num", core))).proved
    assert count_imports(stats) <= 1  # the core header imports nothing, Mathlib once


async def test_back_pressure_bounds_the_queue() -> None:
    settings = fake_settings(lean_workers=1, lean_queue=2)
    async with LeanPool(settings) as pool:
        max_queued = 0

        async def watch() -> None:
            nonlocal max_queued
            while True:
                max_queued = max(max_queued, pool.stats()["queued"])
                await asyncio.sleep(0.01)

        watcher = asyncio.ensure_future(watch())
        results = await asyncio.gather(
            *(pool.check(proof(f"norm_num -- fake:sleep=0.05 copy {i}")) for i in range(12))
        )
        watcher.cancel()
    assert all(r.proved for r in results)
    assert 1 <= max_queued <= 2


async def test_cancelled_caller_does_not_stall_the_pool() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        slow = asyncio.ensure_future(pool.check(proof("norm_num -- fake:sleep=0.3")))
        waiting = asyncio.ensure_future(pool.check(proof("norm_num")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await slow).proved
        assert (await pool.check(proof("norm_num"))).proved
        assert pool.stats()["queued"] == 0


async def test_memory_cap_replaces_the_worker() -> None:
    settings = fake_settings(lean_workers=1, lean_memory_mb=200)
    async with LeanPool(settings) as pool:
        result = await pool.check(proof("norm_num -- fake:oom=400 fake:sleep=2"))
        assert result.verdict is Verdict.SYSTEM_ERROR
        assert "memory cap" in (result.error or "")
        assert (await pool.check(proof("norm_num"))).proved


async def test_worker_is_recycled_past_rss_threshold_and_after_k_checks() -> None:
    settings = fake_settings(lean_workers=1, lean_recycle_mb=120, lean_memory_mb=2000)
    async with LeanPool(settings) as pool:
        pid = pool.stats()["pids"][0]
        assert (await pool.check(proof("norm_num -- fake:leak=150"))).proved
        assert (await pool.check(proof("norm_num"))).proved
        assert pool.stats()["pids"][0] != pid
    settings = fake_settings(lean_workers=1, lean_max_checks=3, result_cache_size=0)
    async with LeanPool(settings) as pool:
        pids = []
        for _ in range(7):
            assert (await pool.check(proof("norm_num"))).proved
            pids.append(pool.stats()["pids"][0] if pool.stats()["pids"] else None)
        assert len({p for p in pids if p is not None}) >= 2


async def test_no_orphans_after_close_or_crash() -> None:
    settings = fake_settings(lean_workers=2, lean_sandbox="none")
    pool = await LeanPool(settings).start()
    spawned: list[int] = []
    for _ in range(2):
        result = await pool.check(proof("norm_num -- fake:spawn"))
        spawned += [int(m) for m in re.findall(r"spawned (\d+)", str(result.messages))]
    crashed = await pool.check(proof("norm_num -- fake:spawn fake:crash"))
    assert crashed.verdict is Verdict.SYSTEM_ERROR
    repl_pids = pool.stats()["pids"]
    assert spawned and repl_pids
    await pool.close()
    await asyncio.sleep(0.2)
    for pid in [*spawned, *repl_pids]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid
    with pytest.raises(PoolClosed):
        await pool.check(proof("norm_num"))


async def test_sandboxed_pool_leaves_no_process_behind() -> None:
    pool = await LeanPool(fake_settings(lean_workers=2, lean_sandbox="bwrap")).start()
    assert (await pool.check(proof("norm_num -- fake:spawn"))).proved
    tree = []
    for pid in pool.stats()["pids"]:
        root = psutil.Process(pid)
        tree += [root, *root.children(recursive=True)]
    assert len(tree) >= 5  # two bwrap wrappers, the REPLs, and the spawned sleeper
    await pool.close()
    _gone, alive = psutil.wait_procs(tree, timeout=5)
    assert not [p for p in alive if p.status() != "zombie"]


async def test_bad_command_fails_fast_naming_the_variable() -> None:
    with pytest.raises(ReplStartError, match="PROVER_LEAN_REPL_CMD"):
        await LeanPool(fake_settings(fake_cmd(startup="crash"), lean_workers=1)).start()
    with pytest.raises(ReplStartError, match="does not speak the Lean REPL protocol"):
        await LeanPool(fake_settings("cat", lean_workers=1)).start()
    with pytest.raises(ReplStartError, match="PROVER_LEAN_REPL_CMD"):
        await LeanPool(fake_settings("/nonexistent/repl", lean_workers=1)).start()


@pytest.mark.parametrize("style", ["old", "new"])
async def test_both_repl_generations_give_the_same_verdicts(style: str) -> None:
    async with LeanPool(fake_settings(fake_cmd(style=style), lean_workers=1)) as pool:
        assert (await pool.check(proof("norm_num"))).verdict is Verdict.PROVED
        incomplete = await pool.check(proof("have h : 1 = 1 := by sorry\n  norm_num"))
        assert incomplete.verdict is Verdict.INCOMPLETE
        assert incomplete.sorries and incomplete.sorries[0].pos is not None
        assert incomplete.sorries[0].pos.line == 9  # line in the user's file, header included


async def test_header_and_statement_errors_are_failures_with_a_reason() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        bad_import = await pool.check(proof("norm_num", header="import NoSuchLib\n\n"))
        assert bad_import.verdict is Verdict.FAILED
        assert "header" in (bad_import.error or "")
        broken = CheckRequest(
            code=f"{HEADER}theorem t : True := by\n  trivial\n",
            statement="theorem t : True fail := by",
        )
        assert (await pool.check(broken)).verdict in (Verdict.FAILED, Verdict.REJECTED)


async def test_messages_keep_the_users_line_numbers() -> None:
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        result = await pool.check(proof("norm_num\n  linarith fail"))
    assert result.verdict is Verdict.FAILED
    error = next(m for m in result.messages if m.is_error)
    assert error.pos.line == 10  # header 7 lines, statement on 8, tactics on 9 and 10


async def test_a_worker_killed_between_checks_is_restarted_for_the_next_one() -> None:
    """A REPL killed while idle (the kernel's OOM killer, an operator) takes its header envs
    with it: the next check elaborates the header afresh instead of failing on a stale env id."""
    async with LeanPool(fake_settings(lean_workers=1)) as pool:
        assert (await pool.check(proof("norm_num"))).verdict is Verdict.PROVED
        (worker,) = pool._workers
        repl = worker.session.proc
        assert repl is not None
        psutil.Process(repl.pid).kill()
        for _ in range(1000):  # until the event loop has seen it die
            if not repl.alive:
                break
            await asyncio.sleep(0.01)
        result = await pool.check(proof("norm_num\n  -- after the kill"))
        assert result.verdict is Verdict.PROVED, result
