"""Latency windows in Redis, shared by every gateway replica.

Keys (under the configured prefix), all with the hash tag ``{w}`` so they live in one hash
slot (every script below declares all its keys in KEYS and works on Redis Cluster; the
price is that every window lives on one cluster node): ``{w}:<key>`` one string per
window, a ring buffer: an 8-byte count of samples ever written, then up to
``max_samples`` rows of 40 bytes (five little-endian doubles: ts, ttft_ms, total_ms,
tokens_per_s, timed_out); ``{w}:index`` the set of window key names. Appending is one Lua
script per attempt that overwrites the oldest row (GETRANGE + SETRANGE, O(1)) and pushes
the key's expiry: atomic, no read-modify-write from Python. Samples older than
``window.seconds`` are dropped when read, so the window is bounded by count in Redis and
by time in what it reports; a window of 1,000 decodes with one ``numpy.frombuffer``.

Reads are cheap on purpose: :meth:`RedisWindows.snapshot` serves a local copy of every
window's stats and refreshes it at most every ``refresh_s`` seconds with one SMEMBERS of
the index and one Lua call per 500 windows that returns them (and forgets expired ones);
while a refresh is in flight, requests get the previous copy (stale-while-revalidate), so
routing never waits on Redis except for the very first read. The staleness bound is
``refresh_s`` plus the refresh's round trips. Percentiles are exact over the
samples read (the same :func:`~pointsman.latency.window.summarize` as in memory).

Timestamps come from the recording replica's clock (keep replicas on NTP).
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
from redis.exceptions import RedisError

from pointsman.latency.config import WindowConfig
from pointsman.latency.window import Sample, summarize
from pointsman.redis_client import close_client, redis_client
from pointsman.redis_config import RedisConfig
from pointsman.types import LatencyStats

log = logging.getLogger("pointsman.latency")

# KEYS: index set, window strings...; ARGV: row, max_samples, ttl_ms
_ADD = """
local max, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 2, #KEYS do
  local k = KEYS[i]
  local head = redis.call('GETRANGE', k, 0, 7)
  local n = 0
  if #head == 8 then n = struct.unpack('<d', head) end
  redis.call('SETRANGE', k, 8 + (n % max) * 40, ARGV[1])
  redis.call('SETRANGE', k, 0, struct.pack('<d', n + 1))
  redis.call('PEXPIRE', k, ttl)
  redis.call('SADD', KEYS[1], k)
end
return 1
"""

# KEYS: index set, window strings... Returns {key, window, ...}; forgets expired windows.
_SNAPSHOT = """
local values = redis.call('MGET', unpack(KEYS, 2))
local out = {}
for i = 2, #KEYS do
  local value = values[i - 1]
  if value then
    table.insert(out, KEYS[i])
    table.insert(out, value)
  else
    redis.call('SREM', KEYS[1], KEYS[i])
  end
end
return out
"""
BATCH = 500  # windows per snapshot call (Lua's unpack has a stack limit)


_ROW = struct.Struct("<5d")


def encode(sample: Sample) -> bytes:
    return _ROW.pack(*sample)


def decode(rows: bytes) -> np.ndarray:
    """An (n, 5) float array of concatenated encoded rows."""
    return np.frombuffer(rows, dtype="<f8").reshape(-1, 5)


def live_rows(window: bytes, horizon: float, max_samples: int) -> np.ndarray:
    """The rows of a window string (past its 8-byte count) at least as new as ``horizon``;
    at most the newest ``max_samples`` (more only if ``max_samples`` was lowered)."""
    rows = decode(window[8: 8 + (len(window) - 8) // 40 * 40])
    live = rows[rows[:, 0] >= horizon]
    if len(live) > max_samples:
        live = live[np.argsort(live[:, 0])[-max_samples:]]
    return live


class RedisWindows:
    """Shared windows on the Redis (or cluster) of ``redis``, keys under ``redis.prefix``;
    ``clock`` gives wall-clock seconds, ``monotonic`` paces refreshes."""

    def __init__(self, redis: RedisConfig, cfg: WindowConfig, *, refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.prefix = redis.prefix
        self.cfg = cfg
        self.refresh_s = refresh_s
        self.clock = clock
        self.monotonic = monotonic
        self._redis = redis_client(redis)
        self._head = self.prefix + "{w}:"
        self._index = self._head + "index"
        self._add = self._redis.register_script(_ADD)
        self._read = self._redis.register_script(_SNAPSHOT)
        self._cache: Mapping[str, LatencyStats] | None = None
        self._cached_at = -math.inf
        self._refreshing: asyncio.Task[None] | None = None

    async def add(self, keys: Sequence[str], sample: Sample) -> None:
        ttl_ms = int(self.cfg.seconds * 1000) + 1000
        names = [self._index, *(self._head + key for key in keys)]
        try:
            await self._add(keys=names, args=[encode(sample), self.cfg.max_samples, ttl_ms])
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

    async def settled(self) -> None:
        """Wait for a background refresh in flight, if any."""
        if self._refreshing is not None:
            await self._refreshing

    async def refresh(self) -> None:
        """Read every window in one call and recompute the local copy."""
        try:
            flat = await self._read_all()
        except (RedisError, OSError) as exc:
            log.warning("latency windows: Redis unavailable, serving the last snapshot: %s",
                        exc)
            if self._cache is None:
                self._cache = {}
            self._cached_at = self.monotonic()
            return
        self._cache = self._summaries(flat)
        self._cached_at = self.monotonic()

    async def _read_all(self) -> list[Any]:
        """Every live window as a flat [name, value, ...] list (expired ones forgotten)."""
        members = sorted(await self._redis.smembers(self._index))
        flat: list[Any] = []
        for first in range(0, len(members), BATCH):
            flat += await self._read(keys=[self._index, *members[first:first + BATCH]],
                                     args=[])
        return flat

    def _summaries(self, flat: list[Any]) -> dict[str, LatencyStats]:
        horizon = self.clock() - self.cfg.seconds
        skip = len(self._head)
        out: dict[str, LatencyStats] = {}
        for i in range(0, len(flat), 2):
            name = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            live = live_rows(flat[i + 1], horizon, self.cfg.max_samples)
            if len(live):
                out[name[skip:]] = summarize(live)
        return out

    async def aclose(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
        await close_client(self._redis)
