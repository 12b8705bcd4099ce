"""The parts the gateway wires in: a StateSource, an OutcomeRecorder, a DeploymentChooser.

:func:`build_latency` builds them from the ``latency`` config section::

    parts = build_latency(config.latency, deployments_by_model, health=health_store)
    Gateway(config, deployments, sources=[parts.source], recorders=[parts.recorder],
            executor=Executor(..., chooser=parts.chooser, recorders=[..., parts.recorder]))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pointsman.latency.bandit import Availability, BanditStore, MemoryBandit, UCB1Chooser, reward
from pointsman.latency.config import LatencyConfig, RewardWeights
from pointsman.latency.window import (
    LatencyWindows,
    MemoryWindows,
    deployment_key,
    model_key,
    sample_of,
)
from pointsman.state import AttemptOutcome
from pointsman.types import LatencyStats, LiveState, RouteRequest

# Error codes that say nothing about a deployment (the caller's fault, a budget refusal).
NEUTRAL_CODES = frozenset({"upstream_rejected", "budget_exceeded", "permission_denied"})
_PREFIX = len(model_key(""))


class LatencySource:
    """A :class:`~pointsman.state.StateSource`: fills ``LiveState.latency`` per model with
    the windows' stats (models with at least ``min_samples`` live samples)."""

    def __init__(self, windows: LatencyWindows, min_samples: int = 1) -> None:
        self.windows = windows
        self.min_samples = min_samples

    async def model_stats(self) -> dict[str, LatencyStats]:
        snapshot = await self.windows.snapshot()
        return {key[_PREFIX:]: stats for key, stats in snapshot.items()
                if key.startswith("m:") and stats.samples >= self.min_samples}

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        stats = await self.model_stats()
        if not stats:
            return state
        return dataclasses.replace(state, latency={**state.latency, **stats})


class LatencyRecorder:
    """An :class:`~pointsman.state.OutcomeRecorder`: each attempt goes into the model's and
    the deployment's windows, and (for models in ``bandit_models``, or all when None) into
    the bandit as one pull of its deployment."""

    def __init__(self, windows: LatencyWindows, bandit: BanditStore | None = None,
                 weights: RewardWeights | None = None,
                 bandit_models: frozenset[str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.windows = windows
        self.bandit = bandit
        self.weights = weights or RewardWeights()
        self.bandit_models = bandit_models
        self.clock = clock

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        if outcome.error_code in NEUTRAL_CODES:
            return
        sample = sample_of(outcome, self.clock())
        if sample is not None:
            keys = [model_key(outcome.model)]
            if outcome.deployment:
                keys.append(deployment_key(outcome.deployment))
            await self.windows.add(keys, sample)
        if self.bandit is not None and outcome.deployment and (
                self.bandit_models is None or outcome.model in self.bandit_models):
            await self.bandit.update(outcome.model, outcome.deployment,
                                     reward(outcome, self.weights))


@dataclass(frozen=True, slots=True)
class LatencyParts:
    windows: LatencyWindows
    bandit: BanditStore
    source: LatencySource
    recorder: LatencyRecorder
    chooser: UCB1Chooser

    async def aclose(self) -> None:
        for part in (self.windows, self.bandit):
            close: Any = getattr(part, "aclose", None)
            if close is not None:
                await close()


def build_latency(cfg: LatencyConfig, deployments: Mapping[str, Sequence[str]] | None = None,
                  *, health: Availability | None = None,
                  clock: Callable[[], float] = time.time) -> LatencyParts:
    """Windows and bandit (memory or Redis, nothing connects yet) and the three parts.

    ``deployments`` (model → deployment names) limits bandit pulls to models with two or
    more deployments; ``health`` lets the chooser skip deployments that are cooling down.
    """
    windows: LatencyWindows
    bandit: BanditStore
    if cfg.store == "redis":
        from pointsman.latency.redis_bandit import RedisBandit
        from pointsman.latency.redis_window import RedisWindows

        windows = RedisWindows(cfg.redis_url, cfg.redis_prefix, cfg.window,
                               refresh_s=cfg.refresh_s, socket_timeout_s=cfg.socket_timeout_s,
                               clock=clock)
        bandit = RedisBandit(cfg.redis_url, cfg.redis_prefix, cfg.bandit.discount,
                             cache_s=cfg.bandit.cache_s, socket_timeout_s=cfg.socket_timeout_s)
    else:
        windows = MemoryWindows(cfg.window, clock, cfg.refresh_s)
        bandit = MemoryBandit(cfg.bandit.discount)
    multi = (frozenset(m for m, names in deployments.items() if len(names) > 1)
             if deployments is not None else None)
    recorder = LatencyRecorder(windows, bandit if cfg.bandit.enabled else None,
                               cfg.bandit.reward, multi, clock)
    return LatencyParts(windows, bandit, LatencySource(windows, cfg.window.min_samples),
                        recorder, UCB1Chooser(bandit, cfg.bandit, health))
