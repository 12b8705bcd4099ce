"""Plans and the budget step-down: pure functions the router and the guard share.

A request's plan comes from its metadata ``plan`` (the gateway sets it from the key's
owner or the ``x-pointsman-plan`` header), else from ``budgets.members`` (``key:K``,
``user:U`` or ``team:T`` → plan), else ``budgets.default_plan``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pointsman.budget.config import BudgetsConfig, DowngradeStep, PlanConfig
from pointsman.types import TIERS, BudgetView, ModelSpec

TIER_RANK = {tier: i for i, tier in enumerate(TIERS)}


def usd(value: float) -> str:
    """Dollars for messages: cents, or as many places as a tiny budget needs ($0.0001)."""
    if value == 0 or abs(value) >= 0.01 or not math.isfinite(value):
        return f"${value:.2f}"
    return f"${value:.{min(9, 1 - math.floor(math.log10(abs(value))))}f}"


def plan_name(cfg: BudgetsConfig, metadata: Mapping[str, Any]) -> str | None:
    if not metadata:
        return cfg.default_plan
    explicit = metadata.get("plan")
    if isinstance(explicit, str) and explicit in cfg.plans:
        return explicit
    for scope in ("key", "user", "team"):
        subject = metadata.get(scope)
        if subject is not None and f"{scope}:{subject}" in cfg.members:
            return cfg.members[f"{scope}:{subject}"]
    return cfg.default_plan


def resolve_plan(cfg: BudgetsConfig, metadata: Mapping[str, Any]) -> PlanConfig | None:
    plan = named_plan(cfg, metadata)
    return plan[1] if plan is not None else None


def named_plan(cfg: BudgetsConfig, metadata: Mapping[str, Any]) -> tuple[str, PlanConfig] | None:
    """The request's plan as (name, config), or None when it has none."""
    name = plan_name(cfg, metadata)
    config = cfg.plans.get(name) if name else None
    return (name, config) if name and config is not None else None


def max_tier(steps: list[DowngradeStep], used_fraction: float) -> str | None:
    """The highest tier allowed at this budget position (None: no step reached)."""
    reached = [s for s in steps if used_fraction >= s.at]
    if not reached:
        return None
    return min((s.max_tier for s in reached), key=lambda t: TIER_RANK[t])


def budget_exclusion(cfg: BudgetsConfig, plan: tuple[str, PlanConfig] | None, spec: ModelSpec,
                     cost_usd: float, budget: BudgetView | None) -> str | None:
    """Why the plan (name and config, from :func:`named_plan`) or the budget position rules
    ``spec`` out, or None."""
    config = plan[1] if plan is not None else None
    if plan is not None:
        name, config = plan
        if spec.tier not in config.tiers:
            return f"tier {spec.tier} not in plan {name!r}"
        if config.models is not None and spec.name not in config.models:
            return f"not allowed by plan {name!r}"
    if budget is None:
        return None
    return _position_exclusion(cfg, config, spec, cost_usd, budget)


def _position_exclusion(cfg: BudgetsConfig, plan: PlanConfig | None, spec: ModelSpec,
                        cost_usd: float, budget: BudgetView) -> str | None:
    if budget.premium_requests_left == 0 and spec.tier == "premium":
        return f"no premium requests left in budget {budget.name}"
    steps = downgrade_steps(cfg, plan)
    ceiling = max_tier(steps, budget.used_fraction)
    if ceiling is not None and TIER_RANK[spec.tier] > TIER_RANK[ceiling]:
        return (f"budget {budget.name} at {budget.used_fraction:.0%}: stepped down to "
                f"tier {ceiling} or below")
    if cost_usd * cfg.cost_margin > budget.remaining_usd:
        return (f"estimated ${cost_usd:.6f} (x{cfg.cost_margin} margin) exceeds the "
                f"${budget.remaining_usd:.6f} left in budget {budget.name}")
    return None


def downgrade_steps(cfg: BudgetsConfig, plan: PlanConfig | None) -> list[DowngradeStep]:
    """The downgrade steps in force: the plan's own, else the global ones."""
    return plan.downgrade if plan is not None and plan.downgrade is not None else cfg.downgrade


def budget_note(budget: BudgetView | None, filtered: Mapping[str, str],
                steps: Sequence[DowngradeStep] = ()) -> str:
    """The phrase a decision's reason gains when the budget restricted the candidates,
    naming the downgrade step reached (``past the 95% step: tiers up to cheap``)."""
    if budget is None or not any(budget.name in why for why in filtered.values()):
        return ""
    if math.isinf(budget.limit_usd):
        return f"; budget {budget.name}: {budget.premium_requests_left} premium requests left"
    reached = [s for s in steps if budget.used_fraction >= s.at]
    step = ""
    if reached:
        top = max(reached, key=lambda s: s.at)
        ceiling = max_tier(list(steps), budget.used_fraction)
        step = f"; past the {top.at:.0%} step: budget stepped down to tier {ceiling} or below"
    return (f"; budget {budget.name}: ${budget.spent_usd:.4f} of {usd(budget.limit_usd)} "
            f"spent ({budget.used_fraction:.0%}), ${budget.remaining_usd:.4f} left{step}")
