"""Bandit statistics in Redis, shared by every gateway replica.

One hash per model, ``b:<model>``, with fields ``n:<arm>`` (discounted pulls) and
``s:<arm>`` (discounted reward sum). A pull is one Lua script: multiply every field by the
discount, then HINCRBYFLOAT the pulled arm's two fields; atomic, so concurrent replicas never
lose an update. The script returns the new hash, which becomes this replica's local copy;
:meth:`RedisBandit.arms` re-reads a model's hash (one HGETALL) only when the local copy is
older than ``cache_s``, so other replicas' pulls are seen within ``cache_s``. Hashes
expire a week after their last pull. Redis errors never fail a request: the update is
dropped, reads serve the last copy (or nothing: every arm looks untried), with a warning.

Keys: ``<prefix>b:<model>``, nothing else. The update script and the read each touch
that one key (declared in KEYS), so they work on Redis Cluster as they are; no hash tag
is needed, and different models' hashes spread over the cluster's slots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from redis.exceptions import RedisError

from pointsman.latency.bandit import Arm
from pointsman.redis_client import close_client, redis_client
from pointsman.redis_config import RedisConfig

log = logging.getLogger("pointsman.latency")
TTL_MS = 7 * 24 * 3600 * 1000

# KEYS: the model's hash; ARGV: discount, arm, reward, ttl_ms
_UPDATE = """
local d = tonumber(ARGV[1])
if d < 1 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    redis.call('HSET', KEYS[1], all[i], string.format('%.17g', tonumber(all[i + 1]) * d))
  end
end
redis.call('HINCRBYFLOAT', KEYS[1], 'n:' .. ARGV[2], 1)
redis.call('HINCRBYFLOAT', KEYS[1], 's:' .. ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_arms(flat: Mapping[Any, Any] | list[Any]) -> dict[str, Arm]:
    """Arms from a hash given as a mapping (HGETALL) or a flat field/value list (Lua)."""
    items = (list(flat.items()) if isinstance(flat, Mapping)
             else list(zip(flat[::2], flat[1::2], strict=True)))
    pulls: dict[str, float] = {}
    sums: dict[str, float] = {}
    for field, value in items:
        kind, _, arm = _text(field).partition(":")
        (pulls if kind == "n" else sums)[arm] = float(_text(value))
    return {arm: Arm(n, sums.get(arm, 0.0)) for arm, n in pulls.items()}


class RedisBandit:
    """Shared arm statistics on the Redis (or cluster) of ``redis``, under its prefix."""

    def __init__(self, redis: RedisConfig, discount: float, *, cache_s: float = 0.25,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.prefix = redis.prefix
        self.discount = discount
        self.cache_s = cache_s
        self.monotonic = monotonic
        self._redis = redis_client(redis)
        self._update = self._redis.register_script(_UPDATE)
        self._cache: dict[str, tuple[float, dict[str, Arm]]] = {}

    def _key(self, model: str) -> str:
        return f"{self.prefix}b:{model}"

    async def update(self, model: str, arm: str, value: float) -> None:
        try:
            flat = await self._update(keys=[self._key(model)],
                                      args=[repr(self.discount), arm, repr(value), TTL_MS])
        except (RedisError, OSError) as exc:
            log.warning("bandit: Redis unavailable, pull of %s/%s dropped: %s", model, arm, exc)
            return
        self._cache[model] = (self.monotonic(), parse_arms(flat))

    async def arms(self, model: str) -> Mapping[str, Arm]:
        cached = self._cache.get(model)
        now = self.monotonic()
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        try:
            raw = await cast(Any, self._redis.hgetall(self._key(model)))
        except (RedisError, OSError) as exc:
            log.warning("bandit: Redis unavailable, using the last statistics: %s", exc)
            return cached[1] if cached is not None else {}
        arms = parse_arms(raw)
        self._cache[model] = (now, arms)
        return arms

    async def aclose(self) -> None:
        await close_client(self._redis)
