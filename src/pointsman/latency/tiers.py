"""Adaptive choice among the models of one tier: a UCB1 bonus in the weighted score.

Off unless ``latency.bandit.tier_bonus`` > 0. Every attempt is one pull of its *model*
in its tier's bandit (key ``tier:<tier>``, same store, discount and reward as the
deployment bandit). Before routing, each model gets ``LiveState.bandit_bonus`` =
``tier_bonus · min(1, UCB index)`` within its tier (``tier_bonus`` for a model never
tried), which the weighted score adds to the candidate's total (the decision shows it as
``bonus``). Complexity fit, cost and latency still dominate; the bonus tips close calls
towards the models of a tier that have answered well, fast and cheaply, and keeps
exploring the others.
"""

from __future__ import annotations

from collections.abc import Mapping

from pointsman.latency.bandit import Arm, BanditStore, reward, ucb_scores
from pointsman.latency.config import BanditConfig
from pointsman.state import AttemptOutcome
from pointsman.types import LiveState, RouteRequest

# Error codes that say nothing about a model (the caller's fault, a budget refusal).
NEUTRAL_CODES = frozenset({"upstream_rejected", "budget_exceeded", "permission_denied"})


def tier_key(tier: str) -> str:
    return f"tier:{tier}"


def tier_bonuses(tiers: Mapping[str, str], stats: Mapping[str, Mapping[str, Arm]],
                 weight: float, exploration: float) -> dict[str, float]:
    """model → bonus; ``stats`` maps a tier to its models' arm statistics."""
    by_tier: dict[str, list[str]] = {}
    for model, tier in tiers.items():
        by_tier.setdefault(tier, []).append(model)
    out: dict[str, float] = {}
    for tier, models in by_tier.items():
        scores = ucb_scores(models, stats.get(tier, {}), exploration)
        out.update((m, weight * min(1.0, scores[m])) for m in models)
    return out


class TierBandit:
    """Both a :class:`~pointsman.state.StateSource` (the bonuses) and an
    :class:`~pointsman.state.OutcomeRecorder` (the pulls)."""

    def __init__(self, store: BanditStore, tiers: Mapping[str, str], cfg: BanditConfig) -> None:
        self.store = store
        self.tiers = dict(tiers)
        self.cfg = cfg
        self._tier_names = sorted(set(self.tiers.values()))

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        stats = {tier: await self.store.arms(tier_key(tier)) for tier in self._tier_names}
        bonus = dict(state.bandit_bonus)
        for model, value in tier_bonuses(self.tiers, stats, self.cfg.tier_bonus,
                                         self.cfg.exploration).items():
            bonus[model] = bonus.get(model, 0.0) + value
        return state.replace(bandit_bonus=bonus)

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        tier = self.tiers.get(outcome.model)
        if tier is None or outcome.error_code in NEUTRAL_CODES:
            return
        await self.store.update(tier_key(tier), outcome.model,
                                reward(outcome, self.cfg.reward))
