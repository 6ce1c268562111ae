"""The Redis job store against a real redis-server: submission, idempotency, cancellation,
events, the queue protocol a worker follows (start, heartbeat, takeover, requeue, finish), fencing
of stale workers, expiry, and persistence across a Redis restart."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from server.jobs import FINISHED, GROUP, Job, JobStatus, JobStore, connect

REQUEST = {"formal_statement": "theorem t1 (a : Nat) : a = a", "header": None,
           "informal_prefix": None, "search": "rmaxts", "budget": 64, "concurrency": None,
           "seed": None}
TTL_S = 3600.0


@pytest.fixture
async def store(redis_url: str):
    s = JobStore(connect(redis_url), ttl_s=TTL_S)
    await s.ensure_group()
    yield s
    await s.close()


async def take(store: JobStore, consumer: str, claim_idle_ms: int = 60_000,
               block_ms: int = 200) -> list[tuple[str, str]]:
    return await store.next_messages(consumer, 10, claim_idle_ms=claim_idle_ms,
                                     block_ms=block_ms)


async def all_events(store: JobStore, job_id: str, after: str = "0") -> list[dict]:
    async def collect() -> list[dict]:
        return [event async for _, event in store.events(job_id, after)]

    return await asyncio.wait_for(collect(), 10)


async def test_submit_get_and_the_public_shape(store: JobStore):
    job, created = await store.submit("prove", REQUEST)
    assert created and job.status is JobStatus.QUEUED and job.kind == "prove"
    assert job.request == REQUEST and job.attempts == 0 and job.worker is None
    assert job.to_public() == {
        "job_id": job.id, "status": "queued",
        "progress": {"samples": 0, "budget": 64, "tree_size": 0}, "result": None,
    }
    assert await store.get(job.id) == job
    assert await store.get("no-such-job") is None
    assert await store.queue_depth() == 1
    assert (await store.status_counts())["queued"] == 1
    assert set(await store.status_counts()) == {s.value for s in JobStatus}
    assert await store.ping()


async def test_the_same_idempotency_key_gives_the_same_job_per_owner(store: JobStore):
    first, created = await store.submit("prove", REQUEST, idempotency_key="k1", owner="alice")
    again, created_again = await store.submit("prove", {**REQUEST, "budget": 9},
                                              idempotency_key="k1", owner="alice")
    assert created and not created_again and again.id == first.id
    assert again.request["budget"] == 64  # the first request stands
    other, other_created = await store.submit("prove", REQUEST, idempotency_key="k1",
                                              owner="bob")
    assert other_created and other.id != first.id
    plain = {(await store.submit("prove", REQUEST))[0].id for _ in range(2)}
    assert len(plain) == 2  # no key: always a new job
    # Racing submits of one key create exactly one job (SET NX inside one script).
    results = await asyncio.gather(*(store.submit("prove", REQUEST, idempotency_key="race")
                                     for _ in range(10)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await store.queue_depth() == 5


async def test_cancelling_a_queued_job_is_immediate_and_the_worker_just_acks(
        store: JobStore):
    job, _ = await store.submit("prove", REQUEST, idempotency_key="c", owner="o")
    cancelled = await store.cancel(job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at is not None and cancelled.to_public()["result"] is None
    assert [e["type"] for e in await all_events(store, job.id)] == ["status", "status", "result"]
    events = await all_events(store, job.id)
    assert events[1] == {"type": "status", "status": "cancelled"}
    assert events[2] == {"type": "result", "status": "cancelled", "result": None}
    counts = await store.status_counts()
    assert counts["queued"] == 0 and counts["cancelled"] == 1
    assert await store.queue_depth() == 0
    # Finished jobs expire, and their idempotency key with them.
    ttl = await store.client.ttl(store.job_key(job.id))
    assert 0 < ttl <= TTL_S
    assert 0 < await store.client.ttl(store.events_key(job.id)) <= TTL_S
    assert 0 < await store.client.ttl(store.idempotency_key("o", "c")) <= TTL_S
    # The worker that later reads the message only acknowledges it.
    [(msg_id, job_id)] = await take(store, "w1")
    assert job_id == job.id
    assert await store.start(msg_id, job_id, "w1") is None
    assert await store.client.xpending(store.queue_key, GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []}
    assert await store.client.xlen(store.queue_key) == 0
    # Cancelling again, or a finished job, changes nothing; unknown ids give None.
    assert (await store.cancel(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert await store.cancel("nope") is None


async def test_a_job_life_cycle_through_the_worker_protocol_and_its_events(store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    seen: list[tuple[str, dict]] = []

    async def watch() -> None:
        async for event_id, event in store.events(job.id):
            seen.append((event_id, event))

    watcher = asyncio.create_task(watch())  # blocks in XREAD until events arrive
    [(msg_id, job_id)] = await take(store, "w1")
    lease = await store.start(msg_id, job_id, "w1")
    assert lease is not None and lease.token == 1
    running = await store.get(job.id)
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.worker == "w1" and running.started_at is not None
    assert (await store.status_counts())["running"] == 1 and await store.queue_depth() == 0
    assert await store.report_progress(lease, {"samples": 3, "budget": 64, "tree_size": 5})
    public = (await store.get(job.id)).to_public()  # type: ignore[union-attr]
    assert public["progress"] == {"samples": 3, "budget": 64, "tree_size": 5}
    assert await store.heartbeat(lease, "w1") == "ok"
    assert await store.save_checkpoint(lease, '{"samples": 3}')
    assert await store.load_checkpoint(job.id) == b'{"samples": 3}'
    result = {"proved": True, "proof": "...", "verdict": "proved", "samples": 4,
              "tree_size": 6, "time_s": 0.1}
    assert await store.finish(lease, JobStatus.SUCCEEDED, result=result) == "running"
    await asyncio.wait_for(watcher, 10)
    assert [e for _, e in seen] == [
        {"type": "status", "status": "queued"},
        {"type": "status", "status": "running"},
        {"type": "progress", "samples": 3, "budget": 64, "tree_size": 5},
        {"type": "status", "status": "succeeded"},
        {"type": "result", "status": "succeeded", "result": result},
    ]
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.result == result
    assert done.to_public()["result"] == result and "error" not in done.to_public()
    assert await store.load_checkpoint(job.id) is None  # not needed any more
    assert 0 < await store.client.ttl(store.job_key(job.id)) <= TTL_S
    assert await store.client.xlen(store.queue_key) == 0  # acknowledged and deleted
    counts = await store.status_counts()
    assert counts["running"] == 0 and counts["succeeded"] == 1
    # A reader of a finished job gets the stored events and stops; `after` resumes.
    assert [e for _, e in seen] == await all_events(store, job.id)
    assert await all_events(store, job.id, after=seen[2][0]) == [e for _, e in seen[3:]]
    assert await all_events(store, "unknown") == []


async def test_failure_is_recorded_with_its_error(store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, job_id)] = await take(store, "w1")
    lease = await store.start(msg_id, job_id, "w1")
    assert lease is not None
    await store.finish(lease, JobStatus.FAILED, result=None, error="the statement is broken")
    failed = await store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.to_public()["error"] == "the statement is broken"
    assert (await all_events(store, job.id))[-1] == {
        "type": "result", "status": "failed", "result": None, "error": "the statement is broken"}


async def test_cancelling_a_running_job_notifies_its_worker(store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, job_id)] = await take(store, "w1")
    lease = await store.start(msg_id, job_id, "w1")
    assert lease is not None
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def listen() -> None:
        async for cancelled_id in store.cancellations():
            await heard.put(cancelled_id)

    listener = asyncio.create_task(listen())
    try:
        # The subscription is live once a publish reaches one subscriber.
        for _ in range(100):
            if await store.client.pubsub_numsub(store.cancel_channel) == [
                    (store.cancel_channel.encode(), 1)]:
                break
            await asyncio.sleep(0.02)
        cancelled = await store.cancel(job.id)
        assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
        assert await asyncio.wait_for(heard.get(), 10) == job.id
    finally:
        listener.cancel()
    # The worker's late writes are refused; its heartbeat says the job ended; it then acks.
    assert not await store.report_progress(lease, {"samples": 9, "budget": 64, "tree_size": 1})
    assert not await store.save_checkpoint(lease, "{}")
    assert await store.heartbeat(lease, "w1") == "ended"
    assert await store.finish(lease, JobStatus.SUCCEEDED, result={}) == "cancelled"
    assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert (await store.client.xpending(store.queue_key, GROUP))["pending"] == 0
    assert (await all_events(store, job.id))[-1]["status"] == "cancelled"
    counts = await store.status_counts()
    assert counts["running"] == 0 and counts["cancelled"] == 1 and counts["succeeded"] == 0


async def test_a_silent_workers_job_is_taken_over_and_the_old_worker_is_fenced_off(
        store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, _)] = await take(store, "a")
    old = await store.start(msg_id, job.id, "a")
    assert old is not None
    await store.save_checkpoint(old, '{"samples": 7}')
    # A heartbeat keeps the message fresh: another worker with a 300 ms claim time waits.
    await asyncio.sleep(0.2)
    assert await store.heartbeat(old, "a") == "ok"
    assert await take(store, "b", claim_idle_ms=300, block_ms=100) == []
    # Silent past the claim time: taken over.
    await asyncio.sleep(0.4)
    assert await take(store, "b", claim_idle_ms=300, block_ms=100) == [(msg_id, job.id)]
    new = await store.start(msg_id, job.id, "b")
    assert new is not None and new.token == old.token + 1
    taken = await store.get(job.id)
    assert taken is not None and taken.worker == "b" and taken.takeovers == 1
    assert taken.status is JobStatus.RUNNING and taken.attempts == 2
    assert (await store.status_counts())["running"] == 1  # still one running job
    assert await store.load_checkpoint(job.id) == b'{"samples": 7}'  # b resumes from it
    # The old worker comes back: everything it writes is refused, nothing is acknowledged.
    assert await store.heartbeat(old, "a") == "lost"
    assert not await store.report_progress(old, {"samples": 1, "budget": 64, "tree_size": 1})
    assert not await store.save_checkpoint(old, '{"samples": 0}')
    assert await store.finish(old, JobStatus.SUCCEEDED, result={"x": 1}) == "lost"
    assert await store.requeue(old) == "lost"
    assert (await store.client.xpending(store.queue_key, GROUP))["pending"] == 1
    assert await store.load_checkpoint(job.id) == b'{"samples": 7}'
    assert await store.heartbeat(new, "b") == "ok"
    await store.finish(new, JobStatus.SUCCEEDED, result={"proved": False})
    done = await store.get(job.id)
    assert done is not None and done.result == {"proved": False}


async def test_a_job_that_keeps_killing_its_workers_is_failed(store: JobStore):
    store.max_takeovers = 2
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, _)] = await take(store, "w0")
    assert await store.start(msg_id, job.id, "w0") is not None
    for n in (1, 2):  # each start of a still-running job is a takeover from a dead worker
        lease = await store.start(msg_id, job.id, f"w{n}")
        assert lease is not None and lease.job.takeovers == n
    assert await store.start(msg_id, job.id, "w3") is None
    failed = await store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "3 times" in (failed.error or "")
    assert (await all_events(store, job.id))[-1]["status"] == "failed"
    counts = await store.status_counts()
    assert counts["running"] == 0 and counts["failed"] == 1


async def test_requeue_hands_a_running_job_back_with_its_checkpoint(store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, _)] = await take(store, "a")
    lease = await store.start(msg_id, job.id, "a")
    assert lease is not None
    await store.save_checkpoint(lease, '{"samples": 12}')
    assert await store.requeue(lease) == "requeued"
    queued = await store.get(job.id)
    assert queued is not None and queued.status is JobStatus.QUEUED and queued.worker is None
    assert await store.queue_depth() == 1 and (await store.status_counts())["running"] == 0
    assert (await store.client.xpending(store.queue_key, GROUP))["pending"] == 0
    [(new_msg, job_id)] = await take(store, "b")
    assert job_id == job.id and new_msg != msg_id
    # The old message is gone for good: starting it again is refused as stale.
    assert await store.start(msg_id, job.id, "c") is None
    lease = await store.start(new_msg, job.id, "b")
    assert lease is not None and lease.job.takeovers == 0 and lease.token == 2
    assert await store.load_checkpoint(job.id) == b'{"samples": 12}'
    statuses = [e["status"] for e in await all_events_so_far(store, job.id)]
    assert statuses == ["queued", "running", "queued", "running"]


async def all_events_so_far(store: JobStore, job_id: str) -> list[dict]:
    entries = await store.client.xrange(store.events_key(job_id))
    return [json.loads(fields[b"data"]) for _, fields in entries]


async def test_an_unstarted_message_is_requeued_only_while_its_job_is_queued(store: JobStore):
    job, _ = await store.submit("prove", REQUEST)
    [(msg_id, _)] = await take(store, "a")
    assert await store.pending_of("a") == [(msg_id, job.id)]
    assert await store.requeue_message(msg_id, job.id) == "requeued"
    assert await store.pending_of("a") == []
    [(msg2, _)] = await take(store, "b")
    lease = await store.start(msg2, job.id, "b")
    assert lease is not None
    assert await store.requeue_message(msg2, job.id) == "busy"  # running: not without a token
    assert (await store.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]
    # Consumer entries of workers gone are forgotten, never one that holds a message.
    await asyncio.sleep(0.05)
    assert await store.prune_consumers(idle_ms=10) == ["a"]
    assert not await store.remove_consumer("b")
    consumers = await store.client.xinfo_consumers(store.queue_key, GROUP)
    assert [c["name"] for c in consumers] == [b"b"]


async def test_jobs_results_and_the_queue_survive_a_redis_restart(redis_server, redis_url):
    store = JobStore(connect(redis_url), ttl_s=TTL_S)
    await store.ensure_group()
    done, _ = await store.submit("prove", REQUEST, idempotency_key="k", owner="o")
    waiting, _ = await store.submit("prove", {**REQUEST, "budget": 8})
    [(msg_id, _), _] = await take(store, "w1")
    lease = await store.start(msg_id, done.id, "w1")
    assert lease is not None
    await store.finish(lease, JobStatus.SUCCEEDED, result={"proved": True, "samples": 1})
    events_before = await all_events(store, done.id)
    await store.close()

    redis_server.stop()
    down = JobStore(aioredis.Redis.from_url(redis_url, socket_connect_timeout=1))
    assert not await down.ping()
    await down.close()
    redis_server.start()

    store = JobStore(connect(redis_url), ttl_s=TTL_S)
    try:
        finished = await store.get(done.id)
        assert finished is not None and finished.status is JobStatus.SUCCEEDED
        assert finished.result == {"proved": True, "samples": 1}
        assert await all_events(store, done.id) == events_before
        again, created = await store.submit("prove", REQUEST, idempotency_key="k", owner="o")
        assert not created and again.id == done.id
        queued = await store.get(waiting.id)
        assert queued is not None and queued.status is JobStatus.QUEUED
        counts = await store.status_counts()
        assert counts["succeeded"] == 1 and counts["queued"] == 1
        # The second job's message is still pending for w1 (it read two): after the claim
        # time another worker takes it over; nothing was lost.
        [(msg2, job_id)] = await take(store, "w2", claim_idle_ms=0)
        assert job_id == waiting.id
        assert await store.start(msg2, job_id, "w2") is not None
    finally:
        await store.close()


def test_finished_set_and_job_round_trip():
    assert {s.value for s in FINISHED} == {"succeeded", "failed", "cancelled"}
    raw = {b"id": b"x", b"kind": b"prove", b"status": b"queued", b"request": b"{}",
           b"created_at": b"1.5", b"attempts": b"0"}
    job = Job.from_hash(raw)
    assert job.progress is None and job.started_at is None and job.owner == ""
    assert job.to_public()["progress"] == {"samples": 0, "budget": None, "tree_size": 0}
