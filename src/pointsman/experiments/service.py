"""The gateway's side of experiments: the live experiments and their per-arm metrics, the
report of ``GET /v1/experiments/{name}`` (admin keys) and the guardrail loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.config import PointsmanConfig
from pointsman.errors import PermissionDeniedError, PointsmanError, RouteNotFoundError
from pointsman.experiments.config import ExperimentConfig
from pointsman.experiments.data import experiment_rows, log_source
from pointsman.experiments.live import Arm, LiveExperiment, build_experiments, running
from pointsman.experiments.report import IsStrong, guardrail_breaches, report
from pointsman.router import Router, resolve_catalog
from pointsman.types import Decision, RouteRequest

if TYPE_CHECKING:
    from pointsman.gateway.runtime import Gateway

log = logging.getLogger("pointsman.experiments")


def strong_test(config: PointsmanConfig) -> IsStrong:
    """What counts as a strong-model call: ``router.strong_model`` in threshold mode, else
    a premium-tier model of the catalog (as ``pointsman shadow`` counts it)."""
    rc = config.router
    if rc.mode == "threshold" and rc.strong_model:
        strong = rc.strong_model
        return lambda model: model == strong
    catalog = resolve_catalog(config)
    premium = frozenset(m.name for m in catalog if m.tier == "premium")
    return lambda model: model in premium


class ArmMetrics:
    """The per-arm series of ``/metrics`` (made once per gateway: a reload keeps them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("pointsman_experiment_decisions", "Routing decisions of "
                                 "experiment arms, by chosen model.",
                                 ["experiment", "arm", "model"], registry=registry)
        self.cost = Counter("pointsman_experiment_cost_usd", "Cost of the requests routed "
                            "by each experiment arm.", ["experiment", "arm"], registry=registry)
        self.stopped = Gauge("pointsman_experiment_arm_stopped", "1 when the guardrail has "
                             "stopped the arm.", ["experiment", "arm"], registry=registry)


class Experiments:
    def __init__(self, config: PointsmanConfig, configs: list[ExperimentConfig],
                 make_router: Callable[[PointsmanConfig], Router], base: Router,
                 metrics: ArmMetrics) -> None:
        self.config = config
        self.live: dict[str, LiveExperiment] = build_experiments(config, configs, make_router,
                                                                 base)
        self.routing = running(self.live)
        self.is_strong = strong_test(config)
        self.metrics = metrics

    def carry_over(self, old: Experiments) -> None:
        """Keep the guardrail's stops of experiments whose arms a reload left as they were."""
        for name, experiment in self.live.items():
            before = old.live.get(name)
            if before is not None and before.cfg.arms == experiment.cfg.arms:
                experiment.stopped.update(before.stopped)

    def assign(self, route: RouteRequest) -> Arm | None:
        return None if self.routing is None else self.routing.assign(route)

    def decided(self, arm: Arm, decision: Decision) -> Decision:
        self.metrics.decisions.labels(arm.experiment, arm.name, decision.model).inc()
        return arm.mark(decision)

    def finished(self, decision: Decision | None, cost_usd: float) -> None:
        if decision is not None and decision.arm is not None and decision.experiment:
            self.metrics.cost.labels(decision.experiment, decision.arm).inc(cost_usd)

    async def report(self, gw: Gateway, name: str) -> dict[str, Any]:
        """The report from the request log (flushed first), the guardrail applied."""
        found = self.live.get(name)
        if found is None:
            raise RouteNotFoundError(f"no experiment {name!r}; configured: "
                                     f"{sorted(self.live)}", "name")
        if gw.log is not None:
            await gw.log.flush()
        source = log_source(self.config.gateway.request_log)
        rows = await asyncio.to_thread(experiment_rows, source, name)
        for arm, why in guardrail_breaches(found.cfg, rows).items():
            found.stop(arm, why)
            self.metrics.stopped.labels(name, arm).set(1)
        return report(found.cfg, rows, self.is_strong, found.stopped)

    def guard_every(self) -> float | None:
        """Seconds between guardrail checks; None when no experiment has a guardrail."""
        rails = [e.cfg.guardrail.check_every_s for e in self.live.values()
                 if e.cfg.guardrail is not None]
        if not rails or not self.config.gateway.request_log.enabled:
            return None
        return min(rails)

    async def check(self, gw: Gateway) -> None:
        """Apply the guardrails once (reports apply them too)."""
        for experiment in self.live.values():
            if experiment.cfg.guardrail is None:
                continue
            try:
                await self.report(gw, experiment.cfg.name)
            except PointsmanError as exc:
                log.warning("experiment %s: guardrail check failed: %s",
                            experiment.cfg.name, exc.message)


async def experiment_endpoint(request: Request) -> Response:
    """``GET /v1/experiments/{name}`` (admin keys: the figures span every caller)."""
    from pointsman.doors.chat import ChatDoor
    from pointsman.gateway.endpoints import authenticate
    from pointsman.gateway.errors import door_error

    gw: Gateway = request.app.state.gateway
    try:
        if not authenticate(gw, request).admin:
            raise PermissionDeniedError("experiment reports need an admin key")
        if gw.experiments is None or not gw.config.gateway.request_log.enabled:
            raise RouteNotFoundError("no experiment is configured (or the request log is "
                                     "off)", "name")
        body = await gw.experiments.report(gw, request.path_params["name"])
    except PointsmanError as exc:
        return door_error(ChatDoor(), exc)
    return JSONResponse(body)
