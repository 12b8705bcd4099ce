"""The shared spend ledger: Redis, every operation one Lua script (atomic across replicas).

Key layout (cluster-safe). Every key lives under one hash tag, ``{<prefix>}`` (or the
prefix as given when it already holds a ``{tag}``), so all of a ledger's keys hash to
one slot and every script runs on one node of a Redis Cluster as well as on a single
Redis. Per counter: ``c:<counter>`` a hash of ``s`` (spent), ``h`` (held) and ``r``
(requests); ``l:<counter>`` a sorted set of the tokens holding on it scored by their
lease expiry (ms); ``la:<counter>`` a hash token → ``<amount>:<counts request>``. All
three expire with the counter's window. ``settled`` is a sorted set of the tokens
settled in the last day (a retried or replayed settle charges once); ``a:<alert>``
alert marks. Every key a script touches is passed in KEYS: an expired lease is purged
from the counters the script was given (each script purges the counters it reads), so
no script follows a key name found inside the data.

Why one slot: a request's reserve must check and hold every budget that applies (key,
user, team, global) all or nothing, and a global budget is shared by every tenant, so
per-tenant tags could not keep one request's keys in one slot. The cost: the ledger is
served by one master (and its replicas) of the cluster: its writes do not spread over
the masters. The ledger is small (three short scripts per request, each touching a few
keys), so one master carries tens of thousands of requests a second; the rest of the
cluster's keys still shard. The alternative (one script per scope, releasing the scopes
already held when a later one refuses) spreads the load but loses the atomic
all-or-nothing reserve, and a process dying between steps leaves holds to the leases.
Keys of the earlier, untagged layout (``<prefix>c:...``) are not read.

Timeouts and failures: the socket timeout is sized for a busy host (``socket_timeout_s``,
2 s by default) and the pool for the gateway's concurrency; connecting has its own short
timeout. Idempotent calls (every script here is keyed by a token or only reads) are
retried once at once after a connection error (a pooled connection that died with a
restarted Redis). A call that times out opens a circuit for ``circuit_open_s``: until
then calls fail at once with :class:`~pointsman.errors.StoreUnavailableError` rather
than each waiting the full timeout, then one call probes. A refused connection fails at
once by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pointsman.budget.ledger import SETTLED_KEEP_S, Check, Hold, Totals
from pointsman.errors import StoreUnavailableError

# KEYS[1] = settled; then (c, l, la) per counter: counter i is KEYS[3i-1 .. 3i+1].
_PRELUDE = """
local function K(i) return KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1] end
local N = (#KEYS - 1) / 3
local function drop(i, token)
  local c, l, la = K(i)
  local v = redis.call('HGET', la, token)
  redis.call('ZREM', l, token)
  if not v then return end
  redis.call('HDEL', la, token)
  local a, r = string.match(v, '^(%d+):(%d)$')
  if redis.call('EXISTS', c) == 0 then return end
  if a ~= '0' then redis.call('HINCRBY', c, 'h', '-' .. a) end
  if r == '1' then redis.call('HINCRBY', c, 'r', -1) end
end
local function purge(now)
  for i = 1, N do
    local _, l = K(i)
    for _, t in ipairs(redis.call('ZRANGEBYSCORE', l, '-inf', '(' .. now)) do drop(i, t) end
  end
end
local function total(ids)
  local s, h, r = 0, 0, 0
  for _, i in ipairs(ids) do
    local c = K(i)
    local v = redis.call('HMGET', c, 's', 'h', 'r')
    s = s + (tonumber(v[1]) or 0); h = h + (tonumber(v[2]) or 0); r = r + (tonumber(v[3]) or 0)
  end
  return s, h, r
end
"""

# ARGV: token, amount, now_ms, lease_expiry_ms, checks JSON (counter indices into KEYS)
_RESERVE = _PRELUDE + """
local token, amount = ARGV[1], ARGV[2]
purge(ARGV[3])
local checks = cjson.decode(ARGV[5])
local _, _, held = K(checks[1].ch)
if redis.call('HEXISTS', held, token) == 1 then return '' end
for _, ck in ipairs(checks) do
  local s, h, r = total(ck.cs)
  if ck.l >= 0 and s + h + tonumber(amount) > ck.l then return ck.b end
  if ck.r == 1 and ck.lr >= 0 and r + 1 > ck.lr then return ck.b end
end
for _, ck in ipairs(checks) do
  local c, l, la = K(ck.ch)
  if amount ~= '0' then redis.call('HINCRBY', c, 'h', amount) end
  if ck.r == 1 then redis.call('HINCRBY', c, 'r', 1) else redis.call('HINCRBY', c, 'r', 0) end
  redis.call('ZADD', l, ARGV[4], token)
  redis.call('HSET', la, token, amount .. ':' .. ck.r)
  for _, k in ipairs({c, l, la}) do redis.call('PEXPIREAT', k, ck.x) end
end
return ''
"""

# ARGV: token, actual, now_ms, keep_ms, request flags ('0'/'1' per counter)
_SETTLE = _PRELUDE + """
local token, actual, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[4])))
if redis.call('ZADD', KEYS[1], 'NX', now, token) == 0 then return 0 end
for i = 1, N do
  drop(i, token)
  local c = K(i)
  if actual ~= '0' then redis.call('HINCRBY', c, 's', actual) end
  if string.sub(ARGV[5], i, i) == '1' then redis.call('HINCRBY', c, 'r', 1) end
end
return 1
"""

# ARGV: token
_RELEASE = _PRELUDE + "for i = 1, N do drop(i, ARGV[1]) end return 1"

# ARGV: lease_expiry_ms, tokens JSON (per counter, the tokens holding on it)
_RENEW = _PRELUDE + """
local per = cjson.decode(ARGV[2])
for i = 1, N do
  local _, l = K(i)
  for _, t in ipairs(per[i]) do redis.call('ZADD', l, 'XX', ARGV[1], t) end
end
return 1
"""

# ARGV: now_ms, groups JSON (counter indices)
_TOTALS = _PRELUDE + """
purge(ARGV[1])
local out = {}
for _, group in ipairs(cjson.decode(ARGV[2])) do
  local s, h, r = total(group)
  table.insert(out, s); table.insert(out, h); table.insert(out, r)
end
return out
"""

SCRIPTS = {"reserve": _RESERVE, "settle": _SETTLE, "release": _RELEASE, "renew": _RENEW,
           "totals": _TOTALS}


def _ms(ts: float) -> int:
    return int(ts * 1000)


def key_base(prefix: str) -> str:
    """The prefix every key starts with: the prefix's own ``{tag}`` or the prefix as one."""
    start = prefix.find("{")
    if start >= 0 and prefix.find("}", start) > start + 1:
        return prefix
    return "{" + prefix + "}"


class KeyPlan:
    """The KEYS of one script call: ``settled``, then (c, l, la) for each counter."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.keys = [base + "settled"]
        self.index: dict[str, int] = {}

    def of(self, counter: str) -> int:
        """The counter's index (1-based, as the scripts' ``K(i)``), added when new."""
        found = self.index.get(counter)
        if found is None:
            found = self.index[counter] = len(self.index) + 1
            self.keys += [f"{self.base}{kind}:{counter}" for kind in ("c", "l", "la")]
        return found


def _check_json(check: Check, plan: KeyPlan) -> dict[str, Any]:
    return {"b": check.budget, "ch": plan.of(check.charge),
            "cs": [plan.of(c) for c in check.counters],
            "l": -1 if check.limit_nanos is None else check.limit_nanos,
            "lr": -1 if check.limit_requests is None else check.limit_requests,
            "r": int(check.counts_request), "x": _ms(check.expires_at)}


class RedisLedger:
    """Spend ledger shared by every gateway replica (a single Redis or a Redis Cluster)."""

    def __init__(self, url: str, prefix: str, socket_timeout_s: float = 2.0,
                 max_connections: int = 128, *, connect_timeout_s: float = 1.0,
                 circuit_open_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 client: Redis | RedisCluster | None = None) -> None:
        """``client`` (a Redis Cluster client from
        :func:`pointsman.redis_client.redis_client`, owned and closed by the ledger)
        replaces the pool built from ``url`` and the timeouts."""
        self.prefix = prefix
        self.base = key_base(prefix)
        self.circuit_open_s = circuit_open_s
        self.clock = clock
        if client is None:
            pool = BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=socket_timeout_s,
                socket_timeout=socket_timeout_s, socket_connect_timeout=connect_timeout_s,
                retry=Retry(NoBackoff(), 0))
            client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._redis = client
        self._scripts = {name: self._redis.register_script(src)
                         for name, src in SCRIPTS.items()}
        self._failed_at: float | None = None
        self._probing = False

    # -- calls, retries and the circuit ---------------------------------------------------
    def _gate(self) -> bool:
        """Refuse at once while the circuit is open; True when this call is the probe."""
        if self._failed_at is None:
            return False
        if self.clock() < self._failed_at + self.circuit_open_s or self._probing:
            raise StoreUnavailableError(
                "spend ledger Redis unavailable (timed out moments ago; not retried yet)")
        self._probing = True
        return True

    async def _call(self, script: str, keys: Sequence[str], *args: Any) -> Any:
        probe = self._gate()
        try:
            result = await self._attempt(script, keys, args)
        except StoreUnavailableError:
            if probe:
                self._probing = False
            raise
        self._failed_at, self._probing = None, False
        return result

    async def _attempt(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        for attempt in (1, 2):  # every script is idempotent: one retry after a dead conn
            try:
                return await self._scripts[script](keys=list(keys), args=list(args))
            except (RedisTimeoutError, TimeoutError) as exc:
                self._failed_at = self.clock()
                raise StoreUnavailableError(f"spend ledger Redis timed out: {exc}") from None
            except (RedisConnectionError, OSError) as exc:
                if attempt == 2:
                    raise StoreUnavailableError(
                        f"spend ledger Redis unavailable: {exc}") from None
            except RedisError as exc:
                raise StoreUnavailableError(f"spend ledger Redis error: {exc}") from None
        raise AssertionError("unreachable")

    # -- SpendLedger ----------------------------------------------------------------------
    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      lease_s: float) -> str | None:
        plan = KeyPlan(self.base)
        payload = json.dumps([_check_json(c, plan) for c in checks])
        refused = await self._call("reserve", plan.keys, token, amount, _ms(now),
                                   _ms(now + lease_s), payload)
        text = refused.decode() if isinstance(refused, bytes) else str(refused)
        return text or None

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        plan = KeyPlan(self.base)
        flags = ["0"] * len(hold.charges)
        for counter, counts in hold.charges:  # distinct counters (one charge per budget)
            flags[plan.of(counter) - 1] = str(int(counts))
        await self._call("settle", plan.keys, token, actual, _ms(now),
                         SETTLED_KEEP_S * 1000, "".join(flags))

    async def release(self, token: str, hold: Hold, now: float) -> None:
        plan = KeyPlan(self.base)
        for counter, _ in hold.charges:
            plan.of(counter)
        await self._call("release", plan.keys, token)

    async def renew(self, holds: Sequence[tuple[str, Hold]], expires_at: float) -> None:
        plan = KeyPlan(self.base)
        per: list[list[str]] = []
        for token, hold in holds:
            for counter, _ in hold.charges:
                index = plan.of(counter)
                if index > len(per):
                    per.append([])
                per[index - 1].append(token)
        if per:
            await self._call("renew", plan.keys, _ms(expires_at), json.dumps(per))

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        plan = KeyPlan(self.base)
        groups = [[plan.of(c) for c in group] for group in counters]
        flat = await self._call("totals", plan.keys, _ms(now), json.dumps(groups))
        values = [int(v) for v in flat]
        return [Totals(*values[i:i + 3]) for i in range(0, len(values), 3)]

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        self._gate()
        try:
            done = await cast(Awaitable[Any], self._redis.set(
                f"{self.base}a:{key}", "1", nx=True, pxat=_ms(expires_at)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"spend ledger Redis unavailable: {exc}") from None
        finally:
            self._probing = False
        return bool(done)

    async def aclose(self) -> None:
        from pointsman.redis_client import close_client

        await close_client(self._redis)
