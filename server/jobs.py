"""Search jobs in Redis: submission, status, results, events, cancellation, and the queue.

Everything about a job lives in Redis, so neither the API nor a worker holds state worth losing:
either can restart (or die) at any moment. The queue is a Redis Stream read through a consumer
group (`XREADGROUP`), because a stream gives what a plain list does not: a message a worker has
read stays in the group's pending list until the worker acknowledges it (`XACK`), so a worker
killed mid-job leaves its message behind, and another worker takes it over with `XAUTOCLAIM`
once it has been idle for `job_claim_idle_s`. Live workers keep their messages fresh with a
periodic `XCLAIM ... JUSTID` (a heartbeat), so a long search is never stolen from a healthy one.

Every state change of a job is one Lua script: the job's hash, the status counters, its event
stream and the queue message change together or not at all. Each time a worker starts a job it
gets a fencing token (the job's `attempts` count); writes carrying an older token are refused, so
a worker that was presumed dead and comes back cannot overwrite the work of its successor.

Key layout (prefix `prover` by default):

    {p}:queue               stream of {"job_id"}; consumer group "workers"; one live message per
                            unfinished job (acknowledged messages are deleted)
    {p}:job:{id}            hash: id kind status request progress result error created_at
                            started_at finished_at attempts takeovers worker owner
                            idempotency_key msg (the id of the job's current queue message)
    {p}:job:{id}:events     stream of {"data": JSON event}, capped (MAXLEN ~ 1000); `tree`
                            events are dropped once the job finished (its tree hash has them)
    {p}:job:{id}:checkpoint the RMaxTS checkpoint (JSON), deleted when the job finishes
    {p}:job:{id}:tree       hash: the RMaxTS tree as the live view last saw it (`n:{node}`
                            node JSON, `s:{node}` [visits, value], `event_id` of the last tree
                            event folded in, `proof_path`, `expanded`), for late viewers
    {p}:recent:{owner}      sorted set of job ids by submission time (newest 200 per owner)
    {p}:idem:{sha256}       the job id of an (owner, Idempotency-Key) pair (SET NX)
    {p}:counts              hash status -> count (queued/running: now; finished ones: totals)
    {p}:cancel              pub/sub channel: ids of running jobs just cancelled

Finished jobs (hash, events, idempotency key) expire `ttl_s` after they finish.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from prover.config import Settings


def _keepalive_options() -> dict[int, int]:
    names = (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    return {getattr(socket, n): v for n, v in names if hasattr(socket, n)}


def connect(url: str, **options: Any) -> aioredis.Redis:
    """The Redis client the service and workers should use (options override its defaults).

    - A command that meets a dropped connection (Redis restarted) reconnects and is retried;
      redis-py's `from_url` clients give up at once.
    - No socket timeout: with one, redis-py 8 sends every command through `asyncio.wait_for`,
      which on Python 3.11 can swallow a task's cancellation (a worker told to stop would keep
      reading the queue). TCP keepalive (a dead peer is noticed within about a minute) and a
      health check before reusing an idle connection guard against a vanished server instead,
      and blocking reads stay bounded by their own BLOCK time.
    """
    settings: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "retry": Retry(ExponentialWithJitterBackoff(base=0.1, cap=2.0), 5),
        "health_check_interval": 30,
        **options,
    }
    return aioredis.Redis.from_url(url, **settings)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

GROUP = "workers"
EVENTS_MAXLEN = 1000  # events kept per job; the result event is the newest, so never trimmed
RECENT_MAX = 200  # job ids kept per owner for `GET /v1/jobs`
_HSET_CHUNK = 500  # field/value pairs per HSET in a script (Lua's unpack() has a stack limit)
# A job whose worker vanished (crash, OOM kill, lost machine) this many times is failed rather
# than handed to yet another worker: the job itself is probably what kills them.
MAX_TAKEOVERS = 3
_LONGEST_BLOCK_MS = 15_000  # upper bound on one XREAD/XREADGROUP BLOCK


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None or _text(value) == "" else float(_text(value))


def _opt_json(value: Any) -> Any:
    return None if value is None or _text(value) == "" else json.loads(_text(value))


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: JobStatus
    request: dict[str, Any]
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int  # times a worker started it (also the fencing token of the latest start)
    worker: str | None
    owner: str = ""
    idempotency_key: str | None = None
    takeovers: int = 0  # times another worker took it over from one that stopped answering

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_public(self) -> dict[str, Any]:
        """The job as `GET /v1/jobs/{id}` shows it (interface.md), plus `error` when failed."""
        progress = self.progress or {}
        out: dict[str, Any] = {
            "job_id": self.id,
            "status": self.status.value,
            "progress": {
                "samples": int(progress.get("samples", 0)),
                "budget": progress.get("budget", self.request.get("budget")),
                "tree_size": int(progress.get("tree_size", 0)),
            },
            "result": self.result,
        }
        if self.status is JobStatus.FAILED:
            out["error"] = self.error
        return out

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> Job:
        h = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=h["id"],
            kind=h["kind"],
            status=JobStatus(h["status"]),
            request=json.loads(h["request"]),
            progress=_opt_json(h.get("progress")),
            result=_opt_json(h.get("result")),
            error=h.get("error") or None,
            created_at=float(h["created_at"]),
            started_at=_opt_float(h.get("started_at")),
            finished_at=_opt_float(h.get("finished_at")),
            attempts=int(h.get("attempts") or 0),
            worker=h.get("worker") or None,
            owner=h.get("owner", ""),
            idempotency_key=h.get("idempotency_key") or None,
            takeovers=int(h.get("takeovers") or 0),
        )


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a job: the queue message it came in and the fencing token."""

    job: Job
    msg_id: str
    token: int

    @property
    def job_id(self) -> str:
        return self.job.id


Heartbeat = Literal["ok", "lost", "ended"]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"))


# All job scripts take the same KEYS: job hash, events, checkpoint, idempotency key (a
# placeholder name when the job has none), queue, counters.
_HELPERS = """
local function add_event(data)
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'data', data)
end
local function drop_msg(group, msg)
  redis.call('XACK', KEYS[5], group, msg)
  redis.call('XDEL', KEYS[5], msg)
end
local function count(from, to)
  if from then redis.call('HINCRBY', KEYS[6], from, -1) end
  redis.call('HINCRBY', KEYS[6], to, 1)
end
local function expire_job(ttl_ms)
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
  redis.call('PEXPIRE', KEYS[4], ttl_ms)
  redis.call('DEL', KEYS[3])
end
""".replace("EVENTS_MAXLEN", str(EVENTS_MAXLEN))

# ARGV: id kind request now owner idempotency_key queued_event stale_id
_SUBMIT = _HELPERS + """
if ARGV[6] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing and existing ~= ARGV[8] then return {0, existing} end
  redis.call('SET', KEYS[4], ARGV[1])
end
local msg = redis.call('XADD', KEYS[5], '*', 'job_id', ARGV[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kind', ARGV[2], 'status', 'queued',
           'request', ARGV[3], 'created_at', ARGV[4], 'owner', ARGV[5],
           'idempotency_key', ARGV[6], 'attempts', 0, 'takeovers', 0, 'msg', msg)
count(false, 'queued')
add_event(ARGV[7])
return {1, ARGV[1]}
"""

# ARGV: group msg worker now max_takeovers running_event give_up_error give_up_status_event
#       give_up_result_event ttl_ms
_START = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'msg', 'takeovers', 'started_at')
local status = f[1]
if not status then drop_msg(ARGV[1], ARGV[2]); return {'gone'} end
if f[2] ~= ARGV[2] then drop_msg(ARGV[1], ARGV[2]); return {'stale'} end
if status ~= 'queued' and status ~= 'running' then drop_msg(ARGV[1], ARGV[2]); return {status} end
local takeovers = tonumber(f[3] or '0')
if status == 'running' then
  takeovers = takeovers + 1
  if takeovers > tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[7], 'finished_at', ARGV[4],
               'takeovers', takeovers, 'worker', '')
    count('running', 'failed')
    add_event(ARGV[8])
    add_event(ARGV[9])
    expire_job(tonumber(ARGV[10]))
    drop_msg(ARGV[1], ARGV[2])
    return {'failed'}
  end
else
  count('queued', 'running')
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[3], 'takeovers', takeovers)
if not f[4] then redis.call('HSET', KEYS[1], 'started_at', ARGV[4]) end
add_event(ARGV[6])
return {'run', attempts}
"""

# ARGV: group msg token status result error now status_event result_event ttl_ms
_FINISH = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if not f[1] then drop_msg(ARGV[1], ARGV[2]); return 'gone' end
if f[2] ~= ARGV[3] then return 'lost' end
if f[1] == 'running' then
  redis.call('HSET', KEYS[1], 'status', ARGV[4], 'result', ARGV[5], 'error', ARGV[6],
             'finished_at', ARGV[7])
  count('running', ARGV[4])
  add_event(ARGV[8])
  add_event(ARGV[9])
  expire_job(tonumber(ARGV[10]))
end
drop_msg(ARGV[1], ARGV[2])
return f[1]
"""

# ARGV: group msg token. Acknowledge a job that ended without this worker finishing it.
_RELEASE = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[1] and f[2] ~= ARGV[3] then return 'lost' end
if f[1] == 'running' then return 'running' end
drop_msg(ARGV[1], ARGV[2])
return f[1] or 'gone'
"""

# ARGV: group msg token('' = a message never started: only if still queued) job_id queued_event
_REQUEUE = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'msg')
if not f[1] then drop_msg(ARGV[1], ARGV[2]); return 'gone' end
if ARGV[3] ~= '' and f[2] ~= ARGV[3] then return 'lost' end
if f[3] ~= ARGV[2] then drop_msg(ARGV[1], ARGV[2]); return 'stale' end
if f[1] ~= 'queued' and f[1] ~= 'running' then drop_msg(ARGV[1], ARGV[2]); return f[1] end
if ARGV[3] == '' and f[1] == 'running' then return 'busy' end
local msg = redis.call('XADD', KEYS[5], '*', 'job_id', ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'queued', 'msg', msg, 'worker', '')
if f[1] == 'running' then
  count('running', 'queued')
  add_event(ARGV[5])
end
drop_msg(ARGV[1], ARGV[2])
return 'requeued'
"""

# ARGV: token progress event
_PROGRESS = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
add_event(ARGV[3])
return 1
"""

# KEYS: job hash, events, tree hash. ARGV: token ttl_ms reset tree_event progress
#       progress_event proof_path expanded, then field/value pairs of the tree hash.
# One tree event (the batched deltas), the snapshot updated to match it, then the usual progress
# write: a viewer that reads the snapshot and follows the events after its `event_id` misses
# nothing and sees nothing twice.
_TREE = _HELPERS + """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 0 end
if ARGV[3] == '1' then redis.call('DEL', KEYS[3]) end
local id = add_event(ARGV[4])
local batch = {}
for i = 9, #ARGV do
  batch[#batch + 1] = ARGV[i]
  if #batch >= HSET_CHUNK * 2 then
    redis.call('HSET', KEYS[3], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('HSET', KEYS[3], unpack(batch)) end
redis.call('HSET', KEYS[3], 'event_id', id)
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], 'proof_path', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[3], 'expanded', ARGV[8]) end
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'progress', ARGV[5])
add_event(ARGV[6])
return 1
""".replace("HSET_CHUNK", str(_HSET_CHUNK))

# KEYS: events. ARGV: start (exclusive) count. Deletes the `tree` events among the next `count`
# entries; returns {last id seen, deleted}. Paged, so Redis never stalls on a long stream.
_DROP_TREE_EVENTS = """
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local deleted = 0
local last = ''
for _, entry in ipairs(entries) do
  last = entry[1]
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'data' and string.sub(fields[i + 1], 1, 15) == '{"type":"tree",' then
      redis.call('XDEL', KEYS[1], entry[1])
      deleted = deleted + 1
    end
  end
end
return {last, deleted}
"""

# ARGV: token data
_CHECKPOINT = """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[2])
return 1
"""

# ARGV: group consumer msg token -> 1 ok (message re-claimed: idle time reset), 0 lost (another
# worker holds the job now), 2 ended (cancelled or otherwise finished)
_HEARTBEAT = """
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[2] ~= ARGV[4] then return 0 end
if f[1] ~= 'running' then return 2 end
redis.call('XCLAIM', KEYS[5], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS: queue; ARGV: group consumer. Atomic, so a consumer that just read a message keeps it.
_PRUNE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# ARGV: now status_event result_event ttl_ms channel job_id
_CANCEL = _HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status ~= 'queued' and status ~= 'running' then return status end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1])
count(status, 'cancelled')
add_event(ARGV[2])
add_event(ARGV[3])
expire_job(tonumber(ARGV[4]))
if status == 'running' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return status
"""


@dataclass(frozen=True)
class JobOutcome:
    status: JobStatus
    result: dict[str, Any] | None  # set when the job succeeded
    error: str | None  # why not, otherwise


class JobStore:
    """Jobs, their events and the work queue in one Redis; shared by the API and the workers.

    The first block of methods is what the HTTP API uses; the second (from `ensure_group`) is
    the worker's side of the queue.
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "prover",
                 ttl_s: float = 30 * 86400) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.queue_key = f"{prefix}:queue"
        self.counts_key = f"{prefix}:counts"
        self.cancel_channel = f"{prefix}:cancel"
        self.max_takeovers = MAX_TAKEOVERS
        # A blocking read must return before the client's socket timeout fires, or the client
        # would see a timeout (and retry) instead of an empty answer.
        socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        self.block_ms = _LONGEST_BLOCK_MS
        if socket_timeout:
            self.block_ms = max(100, min(self.block_ms, int(socket_timeout * 1000 * 0.8)))
        self._submit = client.register_script(_SUBMIT)
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)
        self._requeue = client.register_script(_REQUEUE)
        self._progress = client.register_script(_PROGRESS)
        self._checkpoint = client.register_script(_CHECKPOINT)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._cancel = client.register_script(_CANCEL)
        self._prune = client.register_script(_PRUNE)
        self._tree = client.register_script(_TREE)
        self._drop_tree_events = client.register_script(_DROP_TREE_EVENTS)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        return cls(connect(settings.redis_url), ttl_s=settings.job_ttl_days * 86400)

    # ------------------------------------------------------------------ keys

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def events_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def checkpoint_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:checkpoint"

    def tree_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:tree"

    def recent_key(self, owner: str) -> str:
        return f"{self.prefix}:recent:{owner or '-'}"

    def idempotency_key(self, owner: str, key: str | None) -> str:
        if key is None:
            return f"{self.prefix}:idem:none"  # never written; keeps the scripts' KEYS uniform
        digest = hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()
        return f"{self.prefix}:idem:{digest}"

    def _keys(self, job_id: str, owner: str = "", key: str | None = None) -> list[str]:
        return [self.job_key(job_id), self.events_key(job_id), self.checkpoint_key(job_id),
                self.idempotency_key(owner, key), self.queue_key, self.counts_key]

    def _job_keys(self, job: Job) -> list[str]:
        return self._keys(job.id, job.owner, job.idempotency_key)

    # ------------------------------------------------------------------ the API's side

    async def submit(self, kind: str, request: dict[str, Any], *,
                     idempotency_key: str | None = None, owner: str = "") -> tuple[Job, bool]:
        """Queue a job; with an idempotency key, the (owner, key) pair's existing job instead.

        Returns (job, created). A second submit with the same pair returns the first job even
        if its request differs: the key names the intent, as in Stripe's API.
        """
        stale = ""
        while True:
            job_id = uuid.uuid4().hex
            reply = await self._submit(
                keys=self._keys(job_id, owner, idempotency_key),
                args=[job_id, kind, json.dumps(request, ensure_ascii=False), repr(time.time()),
                      owner, idempotency_key or "", _event("status", status="queued"), stale],
            )
            created, found = int(reply[0]), _text(reply[1])
            job = await self.get(found)
            if job is not None:
                if created:
                    await self._remember(job)
                return job, bool(created)
            if created or found == stale:
                raise RuntimeError(f"job {found} vanished right after it was submitted")
            stale = found  # the key outlived its job (deleted by hand?): replace it once

    async def get(self, job_id: str) -> Job | None:
        raw = await self.client.hgetall(self.job_key(job_id))
        return Job.from_hash(raw) if raw else None

    async def _remember(self, job: Job) -> None:
        """List the job among its owner's recent ones (newest RECENT_MAX kept). Not part of the
        submit script on purpose: the list is a convenience for the web page, and a job missing
        from it (a crash between the two writes) is still complete and reachable by id."""
        key = self.recent_key(job.owner)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {job.id: job.created_at})
            pipe.zremrangebyrank(key, 0, -RECENT_MAX - 1)
            pipe.pexpire(key, self.ttl_ms)
            await pipe.execute()

    async def recent(self, owner: str, limit: int) -> list[Job]:
        """The owner's newest jobs first, at most `limit`; ids whose job expired are dropped
        from the list on the way."""
        key = self.recent_key(owner)
        ids = [_text(i) for i in await self.client.zrevrange(key, 0, max(0, limit - 1))]
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.job_key(job_id))
            raws = await pipe.execute()
        jobs = [Job.from_hash(raw) for raw in raws if raw]
        gone = [job_id for job_id, raw in zip(ids, raws, strict=True) if not raw]
        if gone:
            await self.client.zrem(key, *gone)
        return jobs

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job at once; None for an unknown job.

        A queued job's message stays in the queue and is acknowledged by the worker that reads
        it; a running job's worker hears of it on the cancel channel (or, should it miss that,
        at its next heartbeat) and stops the search. A finished job is returned unchanged.
        """
        job = await self.get(job_id)
        if job is None:
            return None
        if not job.finished:
            await self._cancel(
                keys=self._job_keys(job),
                args=[repr(time.time()), _event("status", status="cancelled"),
                      _event("result", status="cancelled", result=None), self.ttl_ms,
                      self.cancel_channel, job.id],
            )
        return await self.get(job_id)

    async def events(self, job_id: str,
                     after: str = "0") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The job's events after event id `after`, as they happen; ends after the result.

        Waits with XREAD BLOCK, so a reader costs nothing while the job is quiet. Yields nothing
        for an unknown job, and stops if the job disappears (expired) while being watched.
        """
        if await self.get(job_id) is None:
            return
        key = self.events_key(job_id)
        last = after
        while True:
            reply: list[Any] = await self.client.xread(  # type: ignore[assignment]
                {key: last}, count=100, block=self.block_ms)
            if not reply:
                job = await self.get(job_id)
                if job is None or (job.finished
                                   and not await self._has_events_after(key, last)):
                    return
                continue
            for _, entries in reply:
                for raw_id, fields in entries:
                    last = _text(raw_id)
                    event = json.loads(_text(fields.get(b"data", fields.get("data"))))
                    yield last, event
                    if event.get("type") == "result":
                        return

    async def _has_events_after(self, key: str, last: str) -> bool:
        if last in ("0", "0-0"):
            return bool(await self.client.xlen(key))
        return bool(await self.client.xrange(key, min=f"({last}", count=1))

    async def outcome(self, job_id: str) -> JobOutcome | None:
        """Wait for the job to end (XREAD BLOCK on its events); None if it vanished (expired).

        For callers that queue work and need its answer: the completion endpoint and
        distributed evaluations.
        """
        async for _, event in self.events(job_id):
            if event.get("type") != "result":
                continue
            status = JobStatus(str(event.get("status")))
            result = event.get("result")
            if status is JobStatus.SUCCEEDED and isinstance(result, dict):
                return JobOutcome(status, result, None)
            job = await self.get(job_id)
            error = (job.error if job and job.error else None) or f"job {status.value}"
            return JobOutcome(status, None, error)
        return None

    async def queue_depth(self) -> int:
        """Jobs waiting for a worker (queued, including those handed back by a stopping one)."""
        value = await self.client.hget(self.counts_key, JobStatus.QUEUED.value)
        return max(0, int(value or 0))

    async def status_counts(self) -> dict[str, int]:
        """Jobs per status, from counters kept by the scripts (one HGETALL).

        `queued` and `running` are current numbers; `succeeded`, `failed` and `cancelled` count
        every job that ever ended so (they do not drop when finished jobs expire), which is what
        a Prometheus counter wants.
        """
        raw = await self.client.hgetall(self.counts_key)
        counts = {s.value: 0 for s in JobStatus}
        for k, v in raw.items():
            counts[_text(k)] = max(0, int(v))
        return counts

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------------ the workers' side

    async def ensure_group(self) -> None:
        """Create the queue and its consumer group if missing (from the first message on)."""
        try:
            await self.client.xgroup_create(self.queue_key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def next_messages(self, consumer: str, count: int, *, claim_idle_ms: int,
                            block_ms: int) -> list[tuple[str, str]]:
        """Up to `count` (message id, job id) pairs for `consumer`: first messages of workers
        idle past `claim_idle_ms` (presumed dead), else new ones, waiting up to `block_ms`."""
        try:
            claimed: list[Any] = await self.client.xautoclaim(
                self.queue_key, GROUP, consumer, claim_idle_ms, "0-0", count=count)
            out = self._pairs(claimed[1])
            if out:
                return out
            reply: list[Any] = await self.client.xreadgroup(  # type: ignore[assignment]
                GROUP, consumer, {self.queue_key: ">"}, count=count,
                block=min(block_ms, self.block_ms))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # the queue was deleted (FLUSHALL?): start it again
            return []
        return [pair for _, entries in reply or [] for pair in self._pairs(entries)]

    @staticmethod
    def _pairs(entries: Sequence[Any]) -> list[tuple[str, str]]:
        out = []
        for raw_id, fields in entries:
            if not fields:  # deleted from the stream while pending
                continue
            job_id = fields.get(b"job_id", fields.get("job_id"))
            out.append((_text(raw_id), _text(job_id)))
        return out

    async def pending_of(self, consumer: str) -> list[tuple[str, str]]:
        """Messages `consumer` holds unacknowledged, as (message id, job id)."""
        rows = await self.client.xpending_range(self.queue_key, GROUP, min="-", max="+",
                                                count=1000, consumername=consumer)
        out = []
        for row in rows:
            msg_id = _text(row["message_id"])
            entries = await self.client.xrange(self.queue_key, min=msg_id, max=msg_id)
            job_id = self._pairs(entries)[0][1] if entries and self._pairs(entries) else ""
            out.append((msg_id, job_id))
        return out

    async def remove_consumer(self, consumer: str) -> bool:
        """Forget a consumer entry (a stopping worker's), but only if it holds no messages."""
        return bool(int(await self._prune(keys=[self.queue_key], args=[GROUP, consumer])))

    async def prune_consumers(self, idle_ms: int) -> list[str]:
        """Forget the entries of workers long gone (killed workers leave one behind, named by
        host and pid): no messages held and silent for `idle_ms`."""
        removed = []
        for consumer in await self.client.xinfo_consumers(self.queue_key, GROUP):
            name = _text(consumer["name"])
            idle = int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms
            if idle and await self.remove_consumer(name):
                removed.append(name)
        return removed

    async def start(self, msg_id: str, job_id: str, worker: str) -> Lease | None:
        """Mark the job of a delivered message running on `worker`; None when there is nothing
        to run (cancelled, finished, unknown, superseded, or failed after too many takeovers),
        in which case the message has been acknowledged."""
        job = await self.get(job_id)
        keys = self._job_keys(job) if job else self._keys(job_id)
        error = (f"gave up after the job's worker stopped without finishing it "
                 f"{self.max_takeovers + 1} times (crash or out of memory?)")
        reply = await self._start(
            keys=keys,
            args=[GROUP, msg_id, worker, repr(time.time()), self.max_takeovers,
                  _event("status", status="running"), error,
                  _event("status", status="failed"),
                  _event("result", status="failed", result=None, error=error), self.ttl_ms],
        )
        if _text(reply[0]) != "run":
            return None
        token = int(reply[1])
        job = await self.get(job_id)
        return None if job is None else Lease(job, msg_id, token)

    async def finish(self, lease: Lease, status: JobStatus, *, result: dict[str, Any] | None,
                     error: str | None = None) -> str:
        """Record the outcome and acknowledge the message. Returns the status the job had:
        'running' when this call finished it, 'lost' when another worker holds it now."""
        assert status in FINISHED
        result_event: dict[str, Any] = {"status": status.value, "result": result}
        if error is not None:
            result_event["error"] = error
        reply = await self._finish(
            keys=self._job_keys(lease.job),
            args=[GROUP, lease.msg_id, lease.token, status.value,
                  "" if result is None else json.dumps(result, ensure_ascii=False), error or "",
                  repr(time.time()), _event("status", status=status.value),
                  _event("result", **result_event), self.ttl_ms],
        )
        return _text(reply)

    async def release(self, lease: Lease) -> str:
        """Acknowledge the message of a job that ended without this worker (cancelled)."""
        return _text(await self._release(keys=self._job_keys(lease.job),
                                         args=[GROUP, lease.msg_id, lease.token]))

    async def requeue(self, lease: Lease) -> str:
        """Hand a running job back to the queue: a new message, the old one acknowledged, the
        status back to queued. Its checkpoint stays, so the next worker resumes it."""
        return await self.requeue_message(lease.msg_id, lease.job_id, lease.token)

    async def requeue_message(self, msg_id: str, job_id: str, token: int | None = None) -> str:
        """Requeue by message; without a token only a job that never started on it (a message
        read but not yet acted on when the worker was told to stop)."""
        job = await self.get(job_id) if job_id else None
        keys = self._job_keys(job) if job else self._keys(job_id or "-")
        return _text(await self._requeue(
            keys=keys,
            args=[GROUP, msg_id, "" if token is None else token, job_id,
                  _event("status", status="queued")],
        ))

    async def heartbeat(self, lease: Lease, consumer: str) -> Heartbeat:
        """Keep the job's message fresh (XCLAIM JUSTID resets its idle time) while the job is
        still ours and running; otherwise say whether it was lost or has ended."""
        reply = int(await self._heartbeat(keys=self._job_keys(lease.job),
                                          args=[GROUP, consumer, lease.msg_id, lease.token]))
        return {1: "ok", 0: "lost"}.get(reply, "ended")  # type: ignore[return-value]

    async def report_progress(self, lease: Lease, progress: dict[str, Any]) -> bool:
        """Store the progress and add a progress event, if the job is still this lease's."""
        payload = json.dumps(progress, separators=(",", ":"))
        reply = await self._progress(keys=self._job_keys(lease.job),
                                     args=[lease.token, payload, _event("progress", **progress)])
        return bool(int(reply))

    async def report_tree(self, lease: Lease, progress: dict[str, Any],
                          deltas: Sequence[dict[str, Any]]) -> bool:
        """Add one `tree` event with `deltas` (RMaxTS `Tree.delta` dicts, oldest first), fold
        them into the job's tree snapshot, then store the progress and add its event, all in
        one script and only if the job is still this lease's. A delta with `reset` (the whole
        tree, sent when a search starts or resumes) replaces the snapshot."""
        last_reset = max((i for i, d in enumerate(deltas) if d.get("reset")), default=-1)
        fields: dict[str, str] = {}
        proof_path = expanded = ""
        for delta in deltas[max(0, last_reset):]:
            for node in delta.get("new_nodes") or ():
                fields[f"n:{node['id']}"] = _compact(node)
            for node_id, visits, value in delta.get("stats") or ():
                fields[f"s:{node_id}"] = _compact([visits, value])
            if delta.get("proof_path"):
                proof_path = _compact(delta["proof_path"])
            if delta.get("expanded") is not None:
                expanded = str(delta["expanded"])
        pairs = [item for pair in fields.items() for item in pair]
        reply = await self._tree(
            keys=[self.job_key(lease.job_id), self.events_key(lease.job_id),
                  self.tree_key(lease.job_id)],
            args=[lease.token, self.ttl_ms, "1" if last_reset >= 0 else "0",
                  _event("tree", deltas=list(deltas)), _compact(progress),
                  _event("progress", **progress), proof_path, expanded, *pairs],
        )
        return bool(int(reply))

    async def drop_tree_events(self, job_id: str, page: int = 200) -> int:
        """Delete a finished job's `tree` events from its event stream; returns how many.

        They are the bulk of a long RMaxTS job's stream (every node's goal text), and once the
        job has finished its tree snapshot holds all of them, so keeping both for the job's
        whole TTL would double its memory for nothing: a late viewer reads the snapshot."""
        job = await self.get(job_id)
        if job is None or not job.finished:
            return 0
        key, after, total = self.events_key(job_id), "0-0", 0
        while True:
            last, deleted = await self._drop_tree_events(keys=[key], args=[after, page])
            total += int(deleted)
            if not last:
                return total
            after = _text(last)

    async def live_view(self, job_id: str) -> tuple[Job, str, dict[str, Any] | None] | None:
        """(job, event id, tree snapshot), read in one transaction, for a viewer that joins
        late: the snapshot is the tree in the delta format (`reset: true`, every node, the
        latest statistics of each, the proof path) as of tree event `event_id`, so following
        the events after that id continues it exactly. The snapshot is None, and the event id
        "0", while the job has no tree (sampling, or no sample done yet); None for an unknown
        job."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.job_key(job_id))
            pipe.hgetall(self.tree_key(job_id))
            raw_job, raw_tree = await pipe.execute()
        if not raw_job:
            return None
        job = Job.from_hash(raw_job)
        if not raw_tree:
            return job, "0", None
        nodes: list[dict[str, Any]] = []
        stats: list[list[Any]] = []
        meta: dict[str, str] = {}
        for k, v in raw_tree.items():
            field, value = _text(k), _text(v)
            if field.startswith("n:"):
                nodes.append(json.loads(value))
            elif field.startswith("s:"):
                stats.append([int(field[2:]), *json.loads(value)])
            else:
                meta[field] = value
        nodes.sort(key=lambda n: int(n["id"]))
        stats.sort(key=lambda s: int(s[0]))
        expanded = meta.get("expanded")
        snapshot = {
            "reset": True, "expanded": int(expanded) if expanded else None, "reward": None,
            "new_nodes": nodes, "stats": stats,
            "proof_path": json.loads(meta["proof_path"]) if meta.get("proof_path") else None,
        }
        return job, meta.get("event_id", "0"), snapshot

    async def save_checkpoint(self, lease: Lease, data: bytes | str) -> bool:
        """Store the job's checkpoint, if the job is still running under this lease."""
        reply = await self._checkpoint(keys=self._job_keys(lease.job),
                                       args=[lease.token, data])
        return bool(int(reply))

    async def load_checkpoint(self, job_id: str) -> bytes | None:
        value = await self.client.get(self.checkpoint_key(job_id))
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode("utf-8")

    async def delete_checkpoint(self, job_id: str) -> None:
        await self.client.delete(self.checkpoint_key(job_id))

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of running jobs as they are cancelled (pub/sub; a message missed while
        disconnected is caught by the next heartbeat instead)."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.cancel_channel)
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield _text(message["data"])
        finally:
            await pubsub.aclose()
