"""Deployment health shared through Redis: the :class:`~pointsman.health.HealthStore` of
:class:`~pointsman.health.MemoryHealth`, for many gateway replicas.

Same rules as in memory (error rate over ``window_s`` with at least ``min_requests``, or
``consecutive_failures`` in a row, open the breaker for ``cooldown_s``; then one half-open
probe; Retry-After blocks without counting as a failure), kept in Redis so every replica
sees the same breaker and only one of them sends the probe. ``report`` and ``acquire`` are
one Lua script each (atomic; no read-modify-write from Python). Times are wall-clock
seconds (keep replicas on NTP).

Keys, per deployment, under the configured prefix: ``{h:<name>}`` a hash (tripped,
open_until, probing_until, blocked_until, consecutive, seq) and two sorted sets of outcome
ids scored by time, ``{h:<name>}:ok`` and ``{h:<name>}:fail``. The three share the hash tag
``{h:<name>}``, so they are in one hash slot: the report script (which touches all three,
declared in KEYS) works on Redis Cluster, and different deployments spread over the
cluster's slots.

``available`` is asked for every deployment on every request (the cooldown view), so it
reads a local copy of the breaker, refreshed at most every ``cache_s`` (one HMGET) and
replaced by the result of this replica's own ``report`` / ``acquire``; another replica's
trip is seen within ``cache_s``. When Redis cannot be reached, health fails *open* (every
deployment available; reports dropped) with a warning: a dead Redis must not take the
gateway down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis.exceptions import RedisError

from pointsman.gateway.config import HealthConfig
from pointsman.redis_client import close_client, redis_client
from pointsman.redis_config import RedisConfig

log = logging.getLogger("pointsman.health")
_FIELDS = ("tripped", "open_until", "probing_until", "blocked_until")

_PRELUDE = """
local function fmt(x) return string.format('%.6f', x) end
local function fields() return redis.call('HMGET', KEYS[1], 'tripped', 'open_until',
  'probing_until', 'blocked_until') end
"""

# KEYS: hash; ARGV: now, probe hold (s). Returns {granted, fields...}
_ACQUIRE = _PRELUDE + """
local now, v = tonumber(ARGV[1]), fields()
local granted = 1
if now < (tonumber(v[4]) or 0) then granted = 0
elseif v[1] == '1' then
  if now < (tonumber(v[2]) or 0) or now < (tonumber(v[3]) or 0) then granted = 0
  else redis.call('HSET', KEYS[1], 'probing_until', fmt(now + tonumber(ARGV[2]))) end
end
local out = fields()
table.insert(out, 1, granted)
return out
"""

# KEYS: hash, ok zset, fail zset; ARGV: now, ok, retry_after, window_s, cooldown_s,
# min_requests, error_rate, consecutive_failures, ttl_ms. Returns the fields.
_REPORT = _PRELUDE + """
local h, now, ok, ra = KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local cooldown = tonumber(ARGV[5])
if ra > 0 and now + ra > (tonumber(redis.call('HGET', h, 'blocked_until')) or 0) then
  redis.call('HSET', h, 'blocked_until', fmt(now + ra))
end
if redis.call('HGET', h, 'tripped') == '1' then
  redis.call('HSET', h, 'probing_until', '0')
  if ok then
    redis.call('HSET', h, 'tripped', '0', 'consecutive', '0')
    redis.call('DEL', KEYS[2], KEYS[3])
  else
    redis.call('HSET', h, 'open_until', fmt(now + cooldown))
  end
else
  local seq = redis.call('HINCRBY', h, 'seq', 1)
  if ok then
    redis.call('ZADD', KEYS[2], now, seq)
    redis.call('HSET', h, 'consecutive', '0')
  else
    redis.call('ZADD', KEYS[3], now, seq)
    redis.call('HINCRBY', h, 'consecutive', 1)
  end
  local horizon = '(' .. fmt(now - tonumber(ARGV[4]))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', horizon)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', horizon)
  local fails = redis.call('ZCARD', KEYS[3])
  local n = fails + redis.call('ZCARD', KEYS[2])
  local consecutive = tonumber(redis.call('HGET', h, 'consecutive'))
  if consecutive >= tonumber(ARGV[8]) or
      (n >= tonumber(ARGV[6]) and fails / n >= tonumber(ARGV[7])) then
    redis.call('HSET', h, 'tripped', '1', 'open_until', fmt(now + cooldown))
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[9]) end
return fields()
"""


class _Breaker:
    __slots__ = ("blocked_until", "open_until", "probing_until", "read_at", "tripped")

    def __init__(self, raw: Sequence[Any], read_at: float) -> None:
        values = [v.decode() if isinstance(v, bytes) else v for v in raw]
        self.tripped = values[0] == "1"
        self.open_until, self.probing_until, self.blocked_until = (
            float(v) if v is not None else 0.0 for v in values[1:4])
        self.read_at = read_at

    def available(self, now: float) -> bool:
        if now < self.blocked_until:
            return False
        return not self.tripped or (now >= self.open_until and now >= self.probing_until)

    def state(self, now: float) -> str:
        if self.tripped:
            return "open" if now < self.open_until else "half_open"
        return "blocked" if now < self.blocked_until else "closed"


class RedisHealth:
    """The shared :class:`~pointsman.health.HealthStore`, on the Redis (or cluster) of
    ``redis``, under its prefix."""

    def __init__(self, redis: RedisConfig, cfg: HealthConfig, *, cache_s: float = 0.25,
                 clock: Callable[[], float] = time.time) -> None:
        self.prefix = redis.prefix
        self.cfg = cfg
        self.cache_s = cache_s
        self.clock = clock
        self._redis = redis_client(redis)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._report = self._redis.register_script(_REPORT)
        self._cache: dict[str, _Breaker] = {}
        window = max(cfg.window_s, cfg.cooldown_s)
        self._ttl_ms = int((2 * window + 60) * 1000)

    def keys_of(self, deployment: str) -> list[str]:
        """The breaker hash and the ok/fail sorted sets of a deployment (one hash slot)."""
        hashed = f"{self.prefix}{{h:{deployment}}}"
        return [hashed, hashed + ":ok", hashed + ":fail"]

    async def _breaker(self, deployment: str) -> _Breaker | None:
        now = self.clock()
        cached = self._cache.get(deployment)
        if cached is not None and now - cached.read_at < self.cache_s:
            return cached
        try:
            raw = await cast(Any, self._redis.hmget(self.keys_of(deployment)[0], list(_FIELDS)))
        except (RedisError, OSError) as exc:
            log.warning("health: Redis unavailable, %s treated as available: %s",
                        deployment, exc)
            return None
        breaker = self._cache[deployment] = _Breaker(raw, now)
        return breaker

    async def available(self, deployment: str) -> bool:
        breaker = await self._breaker(deployment)
        return breaker is None or breaker.available(self.clock())

    async def state(self, deployment: str) -> str:
        """``closed``, ``open``, ``half_open`` or ``blocked`` (read through the cache)."""
        breaker = await self._breaker(deployment)
        return "closed" if breaker is None else breaker.state(self.clock())

    async def acquire(self, deployment: str) -> bool:
        now = self.clock()
        hold = max(self.cfg.cooldown_s, 1.0)
        try:
            raw = await self._acquire(keys=self.keys_of(deployment)[:1], args=[now, hold])
        except (RedisError, OSError) as exc:
            log.warning("health: Redis unavailable, %s let through: %s", deployment, exc)
            return True
        self._cache[deployment] = _Breaker(raw[1:], now)
        return int(raw[0]) == 1

    async def report(self, deployment: str, ok: bool, retry_after: float | None = None
                     ) -> None:
        cfg, now = self.cfg, self.clock()
        wait = retry_after if retry_after is not None and math.isfinite(retry_after) else 0.0
        try:
            raw = await self._report(keys=self.keys_of(deployment), args=[
                repr(now), int(ok), repr(max(wait, 0.0)), cfg.window_s, cfg.cooldown_s,
                cfg.min_requests, cfg.error_rate, cfg.consecutive_failures, self._ttl_ms])
        except (RedisError, OSError) as exc:
            log.warning("health: Redis unavailable, outcome of %s dropped: %s", deployment, exc)
            return
        self._cache[deployment] = _Breaker(raw, now)

    async def aclose(self) -> None:
        await close_client(self._redis)
