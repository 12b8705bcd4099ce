"""The parts the gateway wires in: a StateSource, an OutcomeRecorder, a DeploymentChooser.

:func:`build_latency` builds them from the ``latency`` config section; the gateway
(:class:`pointsman.gateway.runtime.Gateway`) does::

    parts = build_latency(config.latency, deployments_by_model, health=health_store,
                          tiers={m.name: m.tier for m in catalog})
    sources = [cooldown, parts.source, ...]              # asked before routing
    Executor(catalog, deployments, chooser=parts.chooser,
             recorders=[HealthRecorder(health_store), parts.recorder, ...])
    ...
    await parts.aclose()                                 # at shutdown (Redis clients)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pointsman.latency.bandit import Availability, BanditChooser, BanditStore, MemoryBandit, reward
from pointsman.latency.config import LatencyConfig, RewardWeights
from pointsman.latency.tiers import NEUTRAL_CODES, TierBandit
from pointsman.latency.window import (
    LatencyWindows,
    MemoryWindows,
    deployment_key,
    model_key,
    sample_of,
)
from pointsman.redis_config import RedisConfig
from pointsman.state import AttemptOutcome
from pointsman.types import LatencyStats, LiveState, RouteRequest

_PREFIX = len(model_key(""))


class LatencySource:
    """A :class:`~pointsman.state.StateSource`: fills ``LiveState.latency`` per model with
    the windows' stats (models with at least ``min_samples`` live samples)."""

    def __init__(self, windows: LatencyWindows, min_samples: int = 1,
                 tiers: TierBandit | None = None, enabled: bool = True) -> None:
        self.windows = windows
        self.min_samples = min_samples
        self.tiers = tiers
        self.enabled = enabled

    async def model_stats(self) -> dict[str, LatencyStats]:
        snapshot = await self.windows.snapshot()
        return {key[_PREFIX:]: stats for key, stats in snapshot.items()
                if key.startswith("m:") and stats.samples >= self.min_samples}

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        if self.tiers is not None:
            state = await self.tiers.contribute(request, state)
        if not self.enabled:
            return state
        stats = await self.model_stats()
        if not stats:
            return state
        return state.replace(latency={**state.latency, **stats})


class LatencyRecorder:
    """An :class:`~pointsman.state.OutcomeRecorder`: each attempt goes into the model's and
    the deployment's windows, and (for models in ``bandit_models``, or all when None) into
    the bandit as one pull of its deployment; with ``tiers``, into its tier's bandit too."""

    def __init__(self, windows: LatencyWindows, bandit: BanditStore | None = None,
                 weights: RewardWeights | None = None,
                 bandit_models: frozenset[str] | None = None,
                 clock: Callable[[], float] = time.time,
                 tiers: TierBandit | None = None, windows_on: bool = True) -> None:
        self.windows = windows
        self.bandit = bandit
        self.weights = weights or RewardWeights()
        self.bandit_models = bandit_models
        self.clock = clock
        self.tiers = tiers
        self.windows_on = windows_on

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        if outcome.error_code in NEUTRAL_CODES:
            return
        sample = sample_of(outcome, self.clock()) if self.windows_on else None
        if sample is not None:
            keys = [model_key(outcome.model)]
            if outcome.deployment:
                keys.append(deployment_key(outcome.deployment))
            await self.windows.add(keys, sample)
        if self.bandit is not None and outcome.deployment and (
                self.bandit_models is None or outcome.model in self.bandit_models):
            await self.bandit.update(outcome.model, outcome.deployment,
                                     reward(outcome, self.weights))
        if self.tiers is not None:
            await self.tiers.record(request, outcome)


@dataclass(frozen=True, slots=True)
class LatencyParts:
    windows: LatencyWindows
    bandit: BanditStore
    source: LatencySource
    recorder: LatencyRecorder
    chooser: BanditChooser

    async def aclose(self) -> None:
        for part in (self.windows, self.bandit):
            close: Any = getattr(part, "aclose", None)
            if close is not None:
                await close()


def build_latency(cfg: LatencyConfig, deployments: Mapping[str, Sequence[str]] | None = None,
                  *, health: Availability | None = None,
                  clock: Callable[[], float] = time.time,
                  rng: random.Random | None = None,
                  tiers: Mapping[str, str] | None = None,
                  redis: RedisConfig | None = None) -> LatencyParts:
    """Windows and bandit (memory or Redis, nothing connects yet) and the three parts.

    ``deployments`` (model → deployment names) limits bandit pulls to models with two or
    more deployments; ``health`` lets the chooser skip deployments that are cooling down;
    ``tiers`` (model → tier) enables the tier bonus when ``bandit.tier_bonus`` > 0;
    ``redis`` is the top-level ``redis`` section (``latency.redis_*`` override it).
    """
    windows: LatencyWindows
    bandit: BanditStore
    if cfg.store == "redis":
        from pointsman.latency.redis_bandit import RedisBandit
        from pointsman.latency.redis_window import RedisWindows

        shared = (redis or RedisConfig()).for_store(
            "latency:", url=cfg.redis_url, prefix=cfg.redis_prefix,
            socket_timeout_s=cfg.socket_timeout_s)
        windows = RedisWindows(shared, cfg.window, refresh_s=cfg.refresh_s, clock=clock)
        bandit = RedisBandit(shared, cfg.bandit.discount, cache_s=cfg.bandit.cache_s)
    else:
        windows = MemoryWindows(cfg.window, clock, cfg.refresh_s)
        bandit = MemoryBandit(cfg.bandit.discount)
    multi = (frozenset(m for m, names in deployments.items() if len(names) > 1)
             if deployments is not None else None)
    tier = (TierBandit(bandit, tiers, cfg.bandit)
            if tiers and cfg.bandit.enabled and cfg.bandit.tier_bonus > 0 else None)
    recorder = LatencyRecorder(windows, bandit if cfg.bandit.enabled else None,
                               cfg.bandit.reward, multi, clock, tier, cfg.enabled)
    source = LatencySource(windows, cfg.window.min_samples, tier, cfg.enabled)
    return LatencyParts(windows, bandit, source, recorder,
                        BanditChooser(bandit, cfg.bandit, health, rng))
