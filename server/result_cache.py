"""The results cache shared through Redis by every API process and worker.

One process's in-memory LRU (prover/lean/results.py) forgets on restart and knows nothing of its
neighbours; an RL trainer's resubmissions land on any of them. Entries are the verdict JSON under
`prefix:result:<key>`, and a sorted set `prefix:results` orders them by last use, so the oldest
past PROVER_RESULT_CACHE_SIZE are dropped (LRU across the whole deployment). The get and the put
are one round trip each (Lua scripts, atomic).
"""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from prover.config import Settings
from prover.lean.verdict import CheckResult
from server.jobs import connect

# KEYS[1] entry, KEYS[2] index; ARGV[1] now, ARGV[2] entry name
_GET = """
local value = redis.call('GET', KEYS[1])
if value then redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[2]) end
return value
"""

# KEYS[1] entry, KEYS[2] index; ARGV[1] now, ARGV[2] entry name, ARGV[3] value, ARGV[4] capacity,
# ARGV[5] prefix of entry keys
_PUT = """
redis.call('SET', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[5] .. old[i]) end
end
return over
"""


class RedisResultCache:
    """A `ResultCache` in Redis, bounded to `capacity` verdicts."""

    def __init__(self, client: aioredis.Redis, capacity: int, prefix: str = "prover") -> None:
        self.client = client
        self.capacity = capacity
        self.entry_prefix = f"{prefix}:result:"
        self.index_key = f"{prefix}:results"
        self._get = client.register_script(_GET)
        self._put = client.register_script(_PUT)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisResultCache | None:
        """The deployment's shared cache, or None when PROVER_RESULT_CACHE_SIZE is 0.

        No retries: a lookup that cannot reach Redis is a miss and the check runs on Lean, which
        is better than waiting out a reconnect backoff on every check.
        """
        if settings.result_cache_size <= 0:
            return None
        client = connect(settings.redis_url, retry=Retry(NoBackoff(), 0),
                         socket_connect_timeout=2)
        return cls(client, settings.result_cache_size)

    async def get(self, key: str) -> CheckResult | None:
        raw = await self._get(keys=[self.entry_prefix + key, self.index_key],
                              args=[time.time(), key])
        if raw is None:
            return None
        return CheckResult.from_json(json.loads(raw))

    async def put(self, key: str, result: CheckResult) -> None:
        value = json.dumps(result.to_json(), ensure_ascii=False)
        await self._put(keys=[self.entry_prefix + key, self.index_key],
                        args=[time.time(), key, value, self.capacity, self.entry_prefix])

    async def close(self) -> None:
        await self.client.aclose()
