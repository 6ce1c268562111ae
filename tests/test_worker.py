"""`prover worker` end to end: real redis-server, scripted generator, fake-REPL Lean pool.

Life cycle and events, failures, cancellation of a running search, a worker SIGKILLed mid-job
(taken over and resumed from its Redis checkpoint), a graceful SIGTERM (job handed back, exit 0),
and a Redis restart under a running worker. Workers that must die run as subprocesses of this
module (`python -m tests.test_worker child ...`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from prover.config import Settings
from prover.lean import LeanPool
from prover.model.base import Completion, SamplingParams
from prover.model.scripted import ScriptedGenerator
from prover.runtime import Runtime
from server.checkpoints import LatestWriter
from server.jobs import GROUP, JobStatus, JobStore, connect
from server.worker import run_worker
from tests.conftest import REPO, fake_settings
from tests.server_support import worker

STATEMENT = "theorem t1 (a : Nat) : a = a"
FAILING = "  simp\n  fail\n```\n"  # one verified step, then an error: never a proof


def prove_request(budget: int, search: str = "rmaxts", statement: str = STATEMENT,
                  concurrency: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {"formal_statement": statement, "header": None, "informal_prefix": None,
            "search": search, "budget": budget, "concurrency": concurrency, "seed": 1, **extra}


class Scripted(ScriptedGenerator):
    """A scripted model whose every generation takes `delay` seconds (a slow GPU)."""

    def __init__(self, script: Callable[[str, int], str], delay: float = 0.0) -> None:
        super().__init__(script)
        self.delay = delay

    async def _generate(self, prompts: Sequence[str], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super()._generate(prompts, n, params)

    def calls_for(self, theorem: str) -> int:
        return sum(f"theorem {theorem} " in p for p in self.prompts)


def worker_settings(redis_url: str, **values: object) -> Settings:
    values = {"lean_sandbox": "none", "redis_url": redis_url, "worker_jobs": 1,
              "job_claim_idle_s": 1.5, **values}
    return fake_settings(**values)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[JobStore]:
    s = JobStore(connect(redis_url), ttl_s=3600)
    yield s
    await s.close()


async def events_until_result(store: JobStore, job_id: str,
                              timeout: float = 20) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event async for _, event in store.events(job_id)]

    return await asyncio.wait_for(collect(), timeout)


async def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Test-side wait for a condition of the outside world (a subprocess's progress)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def checkpoint_samples(store: JobStore, job_id: str) -> int:
    raw = await store.load_checkpoint(job_id)
    return 0 if raw is None else int(json.loads(raw)["samples"])


# ---------------------------------------------------------------------- in-process worker


async def test_a_prove_job_runs_to_its_result_with_ordered_events(redis_url, store):
    replies = iter(["  simp\n  fail\n```\n"] * 3)
    gen = Scripted(lambda prompt, seed: next(replies, "  rfl\n```\n"))
    job, _ = await store.submit("prove", prove_request(budget=50, search="sampling"))
    async with worker(worker_settings(redis_url), gen):
        events = await events_until_result(store, job.id)
    types = [e["type"] for e in events]
    assert events[0] == {"type": "status", "status": "queued"}
    assert events[1] == {"type": "status", "status": "running"}
    assert types[-2:] == ["status", "result"] and events[-2]["status"] == "succeeded"
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and types[2:-2] == ["progress"] * len(progress)
    assert progress[-1] == {"type": "progress", "samples": 4, "budget": 50, "tree_size": 0,
                            "verdicts": {"failed": 3, "proved": 1}}
    result = events[-1]["result"]
    assert result["proved"] is True and result["verdict"] == "proved"
    assert result["samples"] == 4 and result["resumed_from"] == 0
    assert result["proof"].endswith("theorem t1 (a : Nat) : a = a := by\n  rfl")
    assert result["proof"].startswith("import Mathlib")  # the default header
    assert set(result) >= {"proved", "proof", "verdict", "samples", "tree_size", "time_s"}
    done = await store.get(job.id)
    assert done is not None
    assert done.to_public() == {"job_id": job.id, "status": "succeeded",
                                "progress": {"samples": 4, "budget": 50, "tree_size": 0},
                                "result": result}
    assert done.attempts == 1 and done.finished_at is not None
    assert await store.status_counts() == {"queued": 0, "running": 0, "succeeded": 1,
                                           "failed": 0, "cancelled": 0}
    assert await store.client.xlen(store.queue_key) == 0  # acknowledged and deleted


async def test_a_repair_job_reports_rounds_and_the_round_that_proved(redis_url, store):
    def model(prompt: Any, seed: int) -> str:
        fixed = len(prompt) > 1  # a correction turn follows the first answer
        tactic = "rfl" if fixed else "fail"
        return f"```lean4\ntheorem t1 (a : Nat) : a = a := by\n  {tactic}\n```"

    gen = Scripted(model)
    job, _ = await store.submit("prove", prove_request(budget=20, search="repair", samples=2,
                                                       corrections=1, rounds=2))
    async with worker(worker_settings(redis_url, model_profile="goedel-v2"), gen):
        events = await events_until_result(store, job.id)
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["round"] == 1 and progress[-1]["rounds"] == 2
    result = events[-1]["result"]
    assert result["proved"] is True and result["round"] == 1
    assert result["proof"].endswith("theorem t1 (a : Nat) : a = a := by\n  rfl")


async def test_an_rmaxts_job_that_finds_no_proof_still_succeeds_with_its_tree(redis_url, store):
    gen = Scripted(lambda prompt, seed: FAILING)
    job, _ = await store.submit("prove", prove_request(budget=12, concurrency=3))
    async with worker(worker_settings(redis_url), gen):
        events = await events_until_result(store, job.id)
    result = events[-1]["result"]
    assert events[-1]["status"] == "succeeded"
    assert result["proved"] is False and result["samples"] == 12 and result["tree_size"] >= 2
    assert gen.calls_for("t1") == 12
    assert events[-3]["type"] == "progress" and events[-3]["samples"] == 12
    assert await store.load_checkpoint(job.id) is None  # dropped once finished


async def test_bad_requests_and_unknown_kinds_fail_with_a_message(redis_url, store):
    gen = Scripted(lambda prompt, seed: FAILING)
    broken, _ = await store.submit("prove", prove_request(budget=4, statement="lemma := 3"))
    odd, _ = await store.submit("teleport", {"where": "mars"})
    clash, _ = await store.submit("prove", prove_request(
        budget=4, header="import Mathlib\ndef t1 : Nat := 1\n"))
    async with worker(worker_settings(redis_url, worker_jobs=2), gen):
        for job_id in (broken.id, odd.id, clash.id):
            assert (await events_until_result(store, job_id))[-1]["status"] == "failed"
    errors = {}
    for job_id in (broken.id, odd.id, clash.id):
        job = await store.get(job_id)
        assert job is not None and job.status is JobStatus.FAILED
        errors[job_id] = job.to_public()["error"]
    assert "theorem" in errors[broken.id]
    assert errors[odd.id] == "unknown job kind 'teleport'"
    assert "does not elaborate" in errors[clash.id]
    assert gen.prompts == []  # nothing was sampled for broken problems
    assert (await store.status_counts())["failed"] == 3


async def test_cancelling_a_running_job_stops_its_search_and_frees_the_worker(redis_url,
                                                                              store):
    gen = Scripted(lambda prompt, seed: FAILING, delay=0.01)
    long, _ = await store.submit("prove", prove_request(budget=100_000, concurrency=2))
    async with worker(worker_settings(redis_url, job_claim_idle_s=30), gen):
        await wait_for(lambda: gen.calls_for("t1") >= 5, 20, "the search to start")
        cancelled = await store.cancel(long.id)
        assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
        # One slot only: the next job runs only once the cancelled search has let go of it.
        started = time.monotonic()
        short, _ = await store.submit("prove", prove_request(
            budget=3, statement="theorem t2 (b : Nat) : b = b"))
        events = await events_until_result(store, short.id, timeout=10)
        assert events[-1]["status"] == "succeeded"
        assert time.monotonic() - started < 10
        calls = gen.calls_for("t1")
        await asyncio.sleep(0.3)
        assert gen.calls_for("t1") == calls < 1000  # the generator is no longer called
    long_events = await events_until_result(store, long.id)
    assert long_events[-1] == {"type": "result", "status": "cancelled", "result": None}
    assert (await store.get(long.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert (await store.client.xpending(store.queue_key, GROUP))["pending"] == 0
    assert await store.load_checkpoint(long.id) is None


async def test_a_worker_rides_out_a_redis_restart(redis_server, redis_url, store):
    gen = Scripted(lambda prompt, seed: FAILING, delay=0.01)
    job, _ = await store.submit("prove", prove_request(budget=300, concurrency=2))
    async with worker(worker_settings(redis_url, job_claim_idle_s=30), gen):
        await wait_for(lambda: gen.calls_for("t1") >= 10, 20, "the search to start")
        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()
        events = await events_until_result(store, job.id, timeout=60)
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["result"]["samples"] == 300
    done = await store.get(job.id)
    assert done is not None and done.attempts == 1  # finished by the same worker


# ---------------------------------------------------------------------- killed workers


def spawn_worker(redis_url: str, name: str, delay: float,
                 claim_idle_s: float = 1.5) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_worker", "child", redis_url, name, str(delay),
         str(claim_idle_s)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def test_a_sigkilled_workers_job_is_taken_over_and_resumes_from_its_checkpoint(
        redis_url, store):
    budget = 160
    job, _ = await store.submit("prove", prove_request(budget=budget, concurrency=2))
    child = spawn_worker(redis_url, "doomed", delay=0.05)
    try:
        await wait_for(lambda: checkpoint_samples(store, job.id), 60, "a first checkpoint")
        gen = Scripted(lambda prompt, seed: FAILING)
        async with worker(worker_settings(redis_url), gen, name="heir"):
            # While the first worker lives, its heartbeats keep the job from the idle one,
            # however long past the claim time (1.5 s) the search runs.
            await asyncio.sleep(3)
            running = await store.get(job.id)
            assert running is not None and running.worker == "doomed"
            assert running.attempts == 1 and gen.prompts == []
            child.kill()
            child.wait(10)
            saved = await checkpoint_samples(store, job.id)
            assert 0 < saved < budget
            events = await events_until_result(store, job.id, timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        stderr = child.stderr.read().decode() if child.stderr else ""
    assert events[-1]["status"] == "succeeded", stderr
    result = events[-1]["result"]
    assert result["samples"] == budget and result["resumed_from"] == saved
    assert gen.calls_for("t1") == budget - saved  # resumed, not restarted
    done = await store.get(job.id)
    assert done is not None and done.attempts == 2 and done.takeovers == 1
    assert done.worker == "heir"
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "running", "succeeded"]


async def test_sigterm_hands_the_job_back_and_exits_zero(redis_url, store):
    budget = 400
    job, _ = await store.submit("prove", prove_request(budget=budget, concurrency=2))
    child = spawn_worker(redis_url, "leaving", delay=0.05)
    try:
        await wait_for(lambda: checkpoint_samples(store, job.id), 60, "a first checkpoint")
        child.send_signal(signal.SIGTERM)
        started = time.monotonic()
        returncode = await asyncio.to_thread(child.wait, 10)
        stopped_in = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    stderr = child.stderr.read().decode() if child.stderr else ""
    assert returncode == 0, stderr
    assert stopped_in < 10
    handed_back = await store.get(job.id)
    assert handed_back is not None and handed_back.status is JobStatus.QUEUED, stderr
    assert handed_back.worker is None and await store.queue_depth() == 1
    saved = await checkpoint_samples(store, job.id)  # flushed on the way out
    assert 0 < saved < budget
    assert handed_back.progress is not None and handed_back.progress["samples"] == saved
    # Structured logs: one JSON object per line, naming worker and job.
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert {"ts", "level", "msg", "job_id", "worker"} <= set(lines[-1])
    assert any(r["msg"] == "job handed back to the queue" and r["job_id"] == job.id
               and r["worker"] == "leaving" for r in lines)
    consumers = await store.client.xinfo_consumers(store.queue_key, GROUP)
    assert all(c["name"] != b"leaving" for c in consumers)  # it left the group tidily

    gen = Scripted(lambda prompt, seed: FAILING)
    async with worker(worker_settings(redis_url), gen, name="next"):
        events = await events_until_result(store, job.id, timeout=30)
    result = events[-1]["result"]
    assert events[-1]["status"] == "succeeded"
    assert result["samples"] == budget and result["resumed_from"] == saved
    assert gen.calls_for("t1") == budget - saved
    done = await store.get(job.id)
    assert done is not None and done.attempts == 2 and done.takeovers == 0
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "queued", "running", "succeeded"]


# ---------------------------------------------------------------------- coalescing writes


async def test_latest_writer_coalesces_and_always_writes_the_last_value():
    written: list[int] = []
    gate = asyncio.Event()

    async def write(value: int) -> None:
        await gate.wait()
        written.append(value)

    writer: LatestWriter[int] = LatestWriter(write)
    writer.push(0)
    await asyncio.sleep(0)  # the write of 0 starts, and waits on the gate
    for i in range(1, 100):
        writer.push(i)  # synchronous: never waits for Redis
    gate.set()
    await writer.flush()
    assert written == [0, 99]  # the one in flight, then only the newest

    throttled: list[int] = []

    async def record(value: int) -> None:
        throttled.append(value)

    slow: LatestWriter[int] = LatestWriter(record, interval=0.2)
    slow.push(1)
    await asyncio.sleep(0)
    slow.push(2)
    slow.push(3)
    await asyncio.sleep(0.05)
    assert throttled == [1]  # the next write waits for the interval
    await asyncio.sleep(0.3)
    assert throttled == [1, 3]  # the timer wrote the newest without anyone flushing
    slow.push(4)
    await slow.flush()  # flush does not wait for the interval
    assert throttled == [1, 3, 4]


async def test_latest_writer_survives_a_failing_write():
    calls: list[int] = []

    async def flaky(value: int) -> None:
        calls.append(value)
        if value == 1:
            raise ConnectionError("redis went away")

    writer: LatestWriter[int] = LatestWriter(flaky)
    writer.push(1)
    await writer.flush()
    writer.push(2)
    await writer.flush()
    assert calls == [1, 2] and writer.failures == 1 and writer.writes == 1


# ---------------------------------------------------------------------- subprocess worker


def _child(redis_url: str, name: str, delay: float, claim_idle_s: float) -> None:
    """A worker process to kill: a slow scripted model that never proves anything."""
    settings = worker_settings(redis_url, job_claim_idle_s=claim_idle_s)

    async def main() -> None:
        gen = Scripted(lambda prompt, seed: FAILING, delay=delay)
        async with Runtime(settings, generator=gen, pool=LeanPool(settings)) as runtime:
            await run_worker(settings, name, runtime=runtime)

    asyncio.run(main())


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    os.environ.pop("PROVER_CONFIG", None)
    _child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
