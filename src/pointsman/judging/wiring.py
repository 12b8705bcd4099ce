"""Build the live judging service from config (nothing runs until the lifespan starts it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pointsman.errors import ConfigError
from pointsman.executor import Executor
from pointsman.health import HealthRecorder
from pointsman.judging.budget import JudgingBudget
from pointsman.judging.service import Judging

if TYPE_CHECKING:
    from pointsman.gateway.runtime import Gateway


def build_judging(gw: Gateway) -> Judging | None:
    """The gateway's judging service, or None when ``judging.enabled`` is false. Its
    executor shares the gateway's catalog, deployments and health (a judge call that fails
    tells the breakers), with the judging budget as its only guard."""
    cfg = gw.config.judging
    if not cfg.enabled:
        return None
    for name in ("reference_model", "judge_model"):
        model = getattr(cfg, name)
        if model not in gw.catalog:
            raise ConfigError(f"judging.{name}: unknown model {model!r}")
    budget = JudgingBudget(cfg.budget_usd)
    executor = Executor(gw.catalog, gw.deployments, health=gw.health, guard=budget,
                        retry=gw.config.gateway.retry, recorders=[HealthRecorder(gw.health)])
    return Judging(cfg, executor, budget, gw.metrics.registry)
