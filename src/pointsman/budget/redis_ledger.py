"""The shared spend ledger: Redis, every operation one Lua script (atomic across replicas).

Keys (all under the configured prefix): ``c:<counter>`` a hash of ``s`` (spent), ``h``
(held) and ``r`` (requests) that expires after its window; ``holds`` a sorted set of
live reservation tokens scored by their expiry (ms); ``holdinfo`` a hash token → the
hold's amount and counters (JSON); ``settled`` a sorted set of the tokens settled in the
last day, so a settle that timed out on the client yet ran, then was retried by the
guard's reconciliation, charges once; ``a:<alert>`` alert marks with the window's expiry.
Expired holds are purged at the start of every script. The scripts also touch counter
keys named inside ``holdinfo``, so this needs a single Redis (not Redis Cluster).

Socket timeouts are short and there are no client retries: an unreachable Redis gives
:class:`~pointsman.errors.StoreUnavailableError` within about the timeout, never a hang.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pointsman.budget.ledger import Check, Hold, Totals
from pointsman.errors import StoreUnavailableError

_PRELUDE = """
local P = ARGV[1]
local function add(counter, s, h, r, must_exist)
  local k = P .. 'c:' .. counter
  if must_exist and redis.call('EXISTS', k) == 0 then return end
  if s ~= 0 then redis.call('HINCRBY', k, 's', s) end
  if h ~= 0 then redis.call('HINCRBY', k, 'h', h) end
  if r ~= 0 then redis.call('HINCRBY', k, 'r', r) end
end
local function drop(token)
  local info = redis.call('HGET', KEYS[2], token)
  if not info then return false end
  redis.call('HDEL', KEYS[2], token)
  redis.call('ZREM', KEYS[1], token)
  local hold = cjson.decode(info)
  for _, c in ipairs(hold.c) do add(c[1], 0, -hold.a, -c[2], true) end
  return true
end
local function purge(now)
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do drop(t) end
end
local function total(counters)
  local s, h, r = 0, 0, 0
  for _, c in ipairs(counters) do
    local v = redis.call('HMGET', P .. 'c:' .. c, 's', 'h', 'r')
    s = s + (tonumber(v[1]) or 0); h = h + (tonumber(v[2]) or 0); r = r + (tonumber(v[3]) or 0)
  end
  return s, h, r
end
"""

# ARGV: prefix, token, amount, now_ms, hold_expiry_ms, checks JSON
_RESERVE = _PRELUDE + """
local amount = tonumber(ARGV[3])
purge(tonumber(ARGV[4]))
local checks = cjson.decode(ARGV[6])
for _, ck in ipairs(checks) do
  local s, h, r = total(ck.cs)
  if ck.l >= 0 and s + h + amount > ck.l then return ck.b end
  if ck.r == 1 and ck.lr >= 0 and r + 1 > ck.lr then return ck.b end
end
local charges = {}
for _, ck in ipairs(checks) do
  add(ck.ch, 0, amount, ck.r, false)
  redis.call('PEXPIREAT', P .. 'c:' .. ck.ch, ck.x)
  table.insert(charges, {ck.ch, ck.r})
end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode({a = amount, c = charges}))
return ''
"""

# ARGV: prefix, token, actual, hold JSON (used when the hold already expired), now_ms.
# Idempotent: a settle that timed out on the client may still have run, and is retried
# by the guard's reconciliation; KEYS[3] remembers settled tokens for SETTLED_MS.
_SETTLE = _PRELUDE + """
local now = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[6])))
if redis.call('ZADD', KEYS[3], 'NX', now, ARGV[2]) == 0 then return 0 end
drop(ARGV[2])
local hold = cjson.decode(ARGV[4])
for _, c in ipairs(hold.c) do add(c[1], tonumber(ARGV[3]), 0, c[2], false) end
return 1
"""

_RELEASE = _PRELUDE + "drop(ARGV[2]) return 1"

# ARGV: prefix, now_ms, groups JSON
_TOTALS = _PRELUDE + """
purge(tonumber(ARGV[2]))
local out = {}
for _, group in ipairs(cjson.decode(ARGV[3])) do
  local s, h, r = total(group)
  table.insert(out, s); table.insert(out, h); table.insert(out, r)
end
return out
"""


SETTLED_MS = 24 * 3600 * 1000  # how long a settled token is remembered (retries dedup)


def _ms(ts: float) -> int:
    return int(ts * 1000)


def _check_json(check: Check) -> dict[str, Any]:
    return {"b": check.budget, "ch": check.charge, "cs": list(check.counters),
            "l": -1 if check.limit_nanos is None else check.limit_nanos,
            "lr": -1 if check.limit_requests is None else check.limit_requests,
            "r": int(check.counts_request), "x": _ms(check.expires_at)}


class RedisLedger:
    """Spend ledger shared by every gateway replica."""

    def __init__(self, url: str, prefix: str, socket_timeout_s: float = 0.25,
                 max_connections: int = 64, *, client: Redis | None = None) -> None:
        """``client`` (from :func:`pointsman.redis_client.redis_client`, owned and closed
        by the ledger) replaces the one built from ``url`` and the timeout."""
        self.prefix = prefix
        if client is None:
            pool = BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=socket_timeout_s,
                socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 0))
            client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._redis = client
        self._keys = [prefix + "holds", prefix + "holdinfo", prefix + "settled"]
        self._scripts = {name: self._redis.register_script(src) for name, src in (
            ("reserve", _RESERVE), ("settle", _SETTLE), ("release", _RELEASE),
            ("totals", _TOTALS))}

    async def _call(self, script: str, *args: Any) -> Any:
        try:
            return await self._scripts[script](keys=self._keys, args=[self.prefix, *args])
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"spend ledger Redis unavailable: {exc}") from None

    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      hold_ttl_s: float) -> str | None:
        payload = json.dumps([_check_json(c) for c in checks])
        refused = await self._call("reserve", token, amount, _ms(now),
                                   _ms(now + hold_ttl_s), payload)
        text = refused.decode() if isinstance(refused, bytes) else str(refused)
        return text or None

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        await self._call("settle", token, actual, hold.dumps(), _ms(now), SETTLED_MS)

    async def release(self, token: str, now: float) -> None:
        await self._call("release", token)

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        flat = await self._call("totals", _ms(now), json.dumps([list(g) for g in counters]))
        values = [int(v) for v in flat]
        return [Totals(*values[i:i + 3]) for i in range(0, len(values), 3)]

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        try:
            done = await cast(Awaitable[Any], self._redis.set(
                f"{self.prefix}a:{key}", "1", nx=True, pxat=_ms(expires_at)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"spend ledger Redis unavailable: {exc}") from None
        return bool(done)

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
