"""Build the live judging service from config (nothing runs until the lifespan starts it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from pointsman.catalog import Catalog
from pointsman.errors import ConfigError
from pointsman.executor import DeploymentSource, Executor
from pointsman.gateway.config import RetryConfig
from pointsman.health import HealthRecorder, HealthStore
from pointsman.judging.budget import JudgingBudget
from pointsman.judging.config import JudgingConfig
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
    return make_judging(cfg, gw.catalog, gw.deployments, gw.config.gateway.retry,
                        gw.metrics.registry, gw.health)


def make_judging(cfg: JudgingConfig, catalog: Catalog, deployments: DeploymentSource,
                 retry: RetryConfig, registry: CollectorRegistry,
                 health: HealthStore | None = None) -> Judging:
    """A judging service over these deployments (the gateway's, or ``pointsman judge``'s)."""
    for name in ("reference_model", "judge_model"):
        model = getattr(cfg, name)
        if not model:
            raise ConfigError(f"judging.{name} is not set")
        if model not in catalog:
            raise ConfigError(f"judging.{name}: unknown model {model!r}")
    budget = JudgingBudget(cfg.budget_usd)
    recorders = [HealthRecorder(health)] if health is not None else []
    executor = Executor(catalog, deployments, health=health, guard=budget, retry=retry,
                        recorders=recorders)
    return Judging(cfg, executor, budget, registry)
