"""Discounted UCB1 (or Thompson sampling) over the deployments of one model: the adaptive
DeploymentChooser.

Each arm (a deployment) keeps a discounted pull count ``n`` and reward sum ``s``. Every
pull recorded for a model first multiplies all its arms' ``n`` and ``s`` by ``discount``
(γ), then adds 1 and the reward to the pulled arm (Garivier & Moulines' discounted UCB):
the bandit remembers about ``1 / (1 - γ)`` pulls. The order is by

    mean + c · sqrt(ln N / n)        mean = s / n, N = Σ n over the model's arms

best first, arms never tried (``n == 0``) first of all in the configured order (cold start:
each arm is tried, nothing is divided by zero). An arm left alone has its ``n`` decay while
the others are pulled, so its bonus grows until it is explored again; a deployment that
recovered wins its traffic back that way.

With ``algorithm: thompson`` each arm draws from Beta(1 + s, 1 + n - s) instead (rewards
in [0, 1] taken as fractional successes, same discounted statistics) and arms are ordered by
their draws: randomised, so concurrent requests spread over the arms even before any reward
comes back.

The reward of an attempt is in [0, 1] (:func:`reward`): success, latency and cost weighed
by the config; a failure or a timeout scores 0. The chooser returns *every* available arm,
so the executor falls back down the order when one fails.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pointsman.latency.config import BanditConfig, RewardWeights
from pointsman.state import AttemptOutcome

_UNTRIED = 1e-9


@dataclass(frozen=True, slots=True)
class Arm:
    """Discounted statistics of one arm: pull count and reward sum."""

    pulls: float
    reward: float

    @property
    def mean(self) -> float:
        return self.reward / self.pulls if self.pulls > _UNTRIED else 0.0


def reward(outcome: AttemptOutcome, weights: RewardWeights) -> float:
    """The reward of one attempt in [0, 1]; failures and timeouts score 0."""
    if not outcome.ok or outcome.timed_out:
        return 0.0
    latency = weights.latency_ref_ms / (weights.latency_ref_ms + max(outcome.total_ms, 0.0))
    cost = weights.cost_ref_usd / (weights.cost_ref_usd + max(outcome.cost_usd, 0.0))
    total = weights.success + weights.latency * latency + weights.cost * cost
    return total / (weights.success + weights.latency + weights.cost)


def ucb_scores(arms: Sequence[str], stats: Mapping[str, Arm], exploration: float
               ) -> dict[str, float]:
    """UCB index of each arm; ``math.inf`` for arms never tried."""
    total = sum(stats[a].pulls for a in arms if a in stats)
    log_n = math.log(max(total, 1.0))
    out: dict[str, float] = {}
    for arm in arms:
        st = stats.get(arm)
        if st is None or st.pulls <= _UNTRIED:
            out[arm] = math.inf
        else:
            out[arm] = st.mean + exploration * math.sqrt(log_n / st.pulls)
    return out


def ucb_order(arms: Sequence[str], stats: Mapping[str, Arm], exploration: float) -> list[str]:
    """Arms best first by UCB index; ties (and untried arms) keep the configured order."""
    scores = ucb_scores(arms, stats, exploration)
    position = {arm: i for i, arm in enumerate(arms)}
    return sorted(arms, key=lambda a: (-scores[a], position[a]))


def thompson_order(arms: Sequence[str], stats: Mapping[str, Arm], rng: random.Random
                   ) -> list[str]:
    """Arms ordered by a draw from each arm's Beta posterior (ties: configured order)."""
    position = {arm: i for i, arm in enumerate(arms)}
    draws: dict[str, float] = {}
    for arm in arms:
        st = stats.get(arm) or Arm(0.0, 0.0)
        wins = min(max(st.reward, 0.0), st.pulls)
        draws[arm] = rng.betavariate(1.0 + wins, 1.0 + st.pulls - wins)
    return sorted(arms, key=lambda a: (-draws[a], position[a]))


def discounted(stats: Mapping[str, Arm], arm: str, value: float, discount: float
               ) -> dict[str, Arm]:
    """The statistics after one pull of ``arm`` with reward ``value``."""
    out = {name: Arm(st.pulls * discount, st.reward * discount) for name, st in stats.items()}
    old = out.get(arm, Arm(0.0, 0.0))
    out[arm] = Arm(old.pulls + 1.0, old.reward + value)
    return out


@runtime_checkable
class BanditStore(Protocol):
    """Arm statistics per model (memory or Redis)."""

    async def update(self, model: str, arm: str, value: float) -> None: ...

    async def arms(self, model: str) -> Mapping[str, Arm]: ...


class MemoryBandit:
    """The in-process bandit statistics."""

    def __init__(self, discount: float) -> None:
        self.discount = discount
        self._models: dict[str, dict[str, Arm]] = {}

    async def update(self, model: str, arm: str, value: float) -> None:
        self._models[model] = discounted(self._models.get(model, {}), arm, value,
                                         self.discount)

    async def arms(self, model: str) -> Mapping[str, Arm]:
        return self._models.get(model, {})


class Availability(Protocol):
    """What the chooser needs of :class:`pointsman.health.HealthStore`."""

    async def available(self, deployment: str) -> bool: ...


class BanditChooser:
    """A :class:`~pointsman.state.DeploymentChooser`: available deployments, best first by
    discounted UCB1 (or Thompson sampling, per ``cfg.algorithm``).

    With ``health``, deployments cooling down (or blocked by Retry-After) are left out, as
    :class:`pointsman.health.HealthyFirstChooser` does.
    """

    def __init__(self, store: BanditStore, cfg: BanditConfig,
                 health: Availability | None = None, rng: random.Random | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.health = health
        self.rng = rng or random.Random()
        self._calls: dict[str, int] = {}  # choices made per model (this process)
        self._first_at: dict[tuple[str, str], int] = {}  # (model, arm) → when last first

    async def order(self, model: str, deployments: Sequence[str]) -> list[str]:
        names = list(deployments)
        if self.health is not None:
            names = [d for d in names if await self.health.available(d)]
        if len(names) <= 1 or not self.cfg.enabled:
            return names
        stats = await self.store.arms(model)
        if self.cfg.algorithm == "thompson":  # randomised: it explores by itself
            return thompson_order(names, stats, self.rng)
        return self._explored(model, ucb_order(names, stats, self.cfg.exploration))

    def _explored(self, model: str, ordered: list[str]) -> list[str]:
        """UCB1: every ``explore_every``-th choice, the arm longest without going first goes
        first (see :class:`~pointsman.latency.config.BanditConfig`)."""
        call = self._calls[model] = self._calls.get(model, 0) + 1
        every = self.cfg.explore_every
        if every and call % every == 0:
            stale = min(ordered[1:], key=lambda a: self._first_at.get((model, a), 0))
            ordered = [stale, *(a for a in ordered if a != stale)]
        self._first_at[(model, ordered[0])] = call
        return ordered
