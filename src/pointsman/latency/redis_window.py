"""Latency windows in Redis, shared by every gateway replica.

Keys (under the configured prefix): ``w:<key>`` a list of samples, newest first, each 40
bytes (five little-endian doubles: ts, ttft_ms, total_ms, tokens_per_s, timed_out), so a
window of 1,000 decodes with one ``numpy.frombuffer``; ``wkeys`` the set of window keys.
Appending is one Lua script per attempt (LPUSH, LTRIM to ``max_samples``, pop samples older
than the window from the tail, PEXPIRE): atomic, no read-modify-write from Python.

Reads are cheap on purpose: :meth:`RedisWindows.snapshot` serves a local copy of every
window's stats and refreshes it at most every ``refresh_s`` seconds with *one* Lua call
that returns all windows; while a refresh is in flight, requests get the previous copy
(stale-while-revalidate), so routing never waits on Redis except for the very first read.
The staleness bound is ``refresh_s`` plus one round trip. Percentiles are exact over the
samples read (the same :func:`~pointsman.latency.window.summarize` as in memory).

Timestamps come from the recording replica's clock (keep replicas on NTP). The snapshot
script reads keys named in ``wkeys``, so this needs a single Redis (not Redis Cluster).
Redis errors never fail a request: a sample that cannot be written is dropped and the
snapshot keeps its last copy (or is empty), each logged as a warning.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pointsman.latency.config import WindowConfig
from pointsman.latency.window import Sample, summarize
from pointsman.types import LatencyStats

log = logging.getLogger("pointsman.latency")

# KEYS: index set, window lists...; ARGV: sample, max_samples, horizon (s), ttl_ms
_ADD = """
local max, horizon, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 2, #KEYS do
  local k = KEYS[i]
  redis.call('LPUSH', k, ARGV[1])
  redis.call('LTRIM', k, 0, max - 1)
  while true do
    local last = redis.call('LINDEX', k, -1)
    if not last or struct.unpack('<d', last) >= horizon then break end
    redis.call('RPOP', k)
  end
  redis.call('PEXPIRE', k, ttl)
  redis.call('SADD', KEYS[1], k)
end
return 1
"""

# KEYS: index set. Returns {key, rows, key, rows, ...}: each window's rows concatenated
_SNAPSHOT = """
local out = {}
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local items = redis.call('LRANGE', k, 0, -1)
  if #items == 0 then
    redis.call('SREM', KEYS[1], k)
  else
    table.insert(out, k)
    table.insert(out, table.concat(items))
  end
end
return out
"""


_ROW = struct.Struct("<5d")


def encode(sample: Sample) -> bytes:
    return _ROW.pack(*sample)


def decode(rows: bytes) -> np.ndarray:
    """An (n, 5) float array of concatenated encoded rows."""
    return np.frombuffer(rows, dtype="<f8").reshape(-1, 5)


def redis_client(url: str, socket_timeout_s: float, max_connections: int = 64) -> Redis:
    """A client with short timeouts and no retries: a dead Redis fails fast, never hangs."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=socket_timeout_s,
        socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 0))
    return Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))


class RedisWindows:
    """Shared windows; ``clock`` gives wall-clock seconds, ``monotonic`` paces refreshes."""

    def __init__(self, url: str, prefix: str, cfg: WindowConfig, *, refresh_s: float = 1.0,
                 socket_timeout_s: float = 0.25, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self.cfg = cfg
        self.refresh_s = refresh_s
        self.clock = clock
        self.monotonic = monotonic
        self._redis = redis_client(url, socket_timeout_s)
        self._index = prefix + "wkeys"
        self._add = self._redis.register_script(_ADD)
        self._read = self._redis.register_script(_SNAPSHOT)
        self._cache: Mapping[str, LatencyStats] | None = None
        self._cached_at = -math.inf
        self._refreshing: asyncio.Task[None] | None = None

    async def add(self, keys: Sequence[str], sample: Sample) -> None:
        horizon = self.clock() - self.cfg.seconds
        ttl_ms = int(self.cfg.seconds * 1000) + 1000
        names = [self._index, *(self.prefix + "w:" + key for key in keys)]
        try:
            await self._add(keys=names, args=[encode(sample), self.cfg.max_samples,
                                              repr(horizon), ttl_ms])
        except (RedisError, OSError) as exc:
            log.warning("latency windows: Redis unavailable, sample dropped: %s", exc)

    async def snapshot(self) -> Mapping[str, LatencyStats]:
        if self._cache is None:
            await self.refresh()
            return self._cache or {}
        if self.monotonic() - self._cached_at >= self.refresh_s and (
                self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self.refresh())
        return self._cache

    async def refresh(self) -> None:
        """Read every window in one call and recompute the local copy."""
        try:
            flat: list[Any] = await self._read(keys=[self._index], args=[])
        except (RedisError, OSError) as exc:
            log.warning("latency windows: Redis unavailable, serving the last snapshot: %s",
                        exc)
            if self._cache is None:
                self._cache = {}
            self._cached_at = self.monotonic()
            return
        self._cache = self._summaries(flat)
        self._cached_at = self.monotonic()

    def _summaries(self, flat: list[Any]) -> dict[str, LatencyStats]:
        horizon = self.clock() - self.cfg.seconds
        skip = len(self.prefix) + 2  # "<prefix>w:"
        out: dict[str, LatencyStats] = {}
        for i in range(0, len(flat), 2):
            name = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            rows = decode(flat[i + 1])[: self.cfg.max_samples]
            live = rows[rows[:, 0] >= horizon]
            if len(live):
                out[name[skip:]] = summarize(live)
        return out

    async def aclose(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
