"""The live side of tier-share targets: a :class:`~pointsman.state.StateSource` that puts the
thresholds in force into ``LiveState.tier_thresholds``, and the window the gateway feeds
each ``auto`` decision's score into after deciding.

``memory``: one process's :class:`ScoreWindow`. ``redis``: every replica appends its scores
to one capped Redis list (one key, hash tag ``{q}``, so it works on Redis Cluster) and
reads the whole window back; both happen in one Lua call at most every ``refresh_s``
seconds, in the background (stale-while-revalidate, as the latency windows do), so a
decision never waits on Redis except for the very first. Scores recorded in between count
locally at once. Redis errors never fail a request: the local window goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping

from pointsman.redis_config import RedisConfig
from pointsman.shares.config import TargetsConfig
from pointsman.shares.window import ScoreWindow
from pointsman.types import LiveState, RouteRequest

log = logging.getLogger("pointsman.shares")

# KEYS: the list; ARGV: window, ttl_ms, scores... Appends, trims, returns the window.
_SYNC = """
if #ARGV > 2 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 3)) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return redis.call('LRANGE', KEYS[1], 0, -1)
"""
_TTL_MS = 7 * 24 * 3600 * 1000  # an idle fleet's window is forgotten after a week


class ScoreQuantiles:
    """Thresholds from this process's window of recent scores."""

    def __init__(self, cfg: TargetsConfig) -> None:
        self.window = ScoreWindow(cfg.window)
        self.retarget(cfg)

    def retarget(self, cfg: TargetsConfig) -> None:
        """New shares (a reload): the window is kept."""
        self.cfg = cfg
        self.quantiles = cfg.quantiles()
        self.window._cache = None

    def add(self, score: float) -> None:
        """Record one ``auto`` decision's complexity score (in [0, 1])."""
        self.window.add(score)

    def current(self) -> Mapping[str, float] | None:
        """The thresholds in force, or None while the window is too small to trust."""
        if len(self.window) < self.cfg.min_samples:
            return None
        return self.window.thresholds(self.quantiles)

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        thresholds = self.current()
        return state if thresholds is None else state.replace(tier_thresholds=thresholds)

    async def aclose(self) -> None:
        return None


class RedisScoreQuantiles(ScoreQuantiles):
    """The window shared by every replica through one capped Redis list."""

    def __init__(self, cfg: TargetsConfig, redis: RedisConfig, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(cfg)
        self.monotonic = monotonic
        # imported here: redis (and what it pulls, opentelemetry when installed) stays out
        # of a gateway that keeps its score window in memory
        from pointsman.redis_client import redis_client

        self._redis = redis_client(redis)
        self._key = redis.prefix + "{q}:scores"
        self._sync = self._redis.register_script(_SYNC)
        self._pending: list[float] = []
        self._synced_at = -math.inf
        self._syncing: asyncio.Task[None] | None = None

    def add(self, score: float) -> None:
        super().add(score)
        self._pending.append(score)
        if len(self._pending) >= 2 * self.cfg.window:  # Redis down for long: the newest
            del self._pending[: -self.cfg.window]

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        if self._synced_at == -math.inf:
            await self.sync()  # the first decision reads the fleet's window
        elif self.monotonic() - self._synced_at >= self.cfg.refresh_s and (
                self._syncing is None or self._syncing.done()):
            self._syncing = asyncio.create_task(self.sync())
        return await super().contribute(request, state)

    async def sync(self) -> None:
        """Push the scores recorded since the last sync and read the shared window back."""
        pending, self._pending = self._pending, []
        try:
            values = await self._sync(keys=[self._key], args=[
                self.cfg.window, _TTL_MS, *(f"{s:.5f}" for s in pending)])
        except (_redis_error(), OSError) as exc:
            log.warning("tier-share targets: Redis unavailable, using this replica's "
                        "scores: %s", exc)
            self._pending = (pending + self._pending)[-self.cfg.window:]
        else:
            self.window.load(float(v) for v in values)
            # scores recorded while the call was in flight stay local until the next sync
            for score in self._pending:
                self.window.add(score)
        self._synced_at = self.monotonic()

    async def settled(self) -> None:
        """Wait for a background sync in flight, if any."""
        if self._syncing is not None:
            await self._syncing

    async def aclose(self) -> None:
        if self._syncing is not None and not self._syncing.done():
            self._syncing.cancel()
        from pointsman.redis_client import close_client

        await close_client(self._redis)


def _redis_error() -> type[Exception]:
    from redis.exceptions import RedisError

    return RedisError


def build_shares(cfg: TargetsConfig, redis: RedisConfig | None = None) -> ScoreQuantiles:
    """The source ``router.targets.store`` asks for (nothing connects yet)."""
    if cfg.store == "memory":
        return ScoreQuantiles(cfg)
    shared = (redis or RedisConfig()).for_store("shares:", url=cfg.redis_url,
                                                prefix=cfg.redis_prefix)
    return RedisScoreQuantiles(cfg, shared)
