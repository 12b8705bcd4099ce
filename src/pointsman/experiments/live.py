"""Experiments in the gateway: each ``model: auto`` request is given an arm by a sticky hash
of its unit (key, user or session), decided by that arm's router, and marked with the
experiment and arm (the decision, the request log and ``/metrics`` carry them).

Assignment is one BLAKE2b hash of the experiment name and the unit (same caller, same arm,
on every replica); an arm stopped by the guardrail hands its callers to the control."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from pydantic import ValidationError

from pointsman.config import PointsmanConfig, RouterConfig
from pointsman.errors import ConfigError
from pointsman.experiments.config import ExperimentConfig
from pointsman.router import Router
from pointsman.types import Decision, RouteRequest

log = logging.getLogger("pointsman.experiments")
SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class Arm:
    experiment: str
    name: str
    router: Router

    def mark(self, decision: Decision) -> Decision:
        return replace(decision, experiment=self.experiment, arm=self.name)


class LiveExperiment:
    def __init__(self, cfg: ExperimentConfig, arms: Sequence[Arm]) -> None:
        self.cfg = cfg
        self.arms = {a.name: a for a in arms}
        self._bounds = list(accumulate(a.share for a in cfg.arms))
        self._names = [a.name for a in cfg.arms]
        self._prefix = f"{cfg.name}\0".encode()
        self.stopped: dict[str, str] = {}  # arm → why the guardrail stopped it

    def assign(self, route: RouteRequest) -> Arm | None:
        """The request's arm; None when it carries no unit (it is not in the experiment)."""
        unit = route.metadata.get(self.cfg.unit)
        if not unit:
            return None
        digest = hashlib.blake2b(self._prefix + str(unit).encode(), digest_size=8).digest()
        point = int.from_bytes(digest) / SCALE
        name = self._names[-1]
        for bound, candidate in zip(self._bounds, self._names, strict=True):
            if point < bound:
                name = candidate
                break
        if name in self.stopped:
            name = self.cfg.control
        return self.arms[name]

    def stop(self, arm: str, why: str) -> None:
        if arm != self.cfg.control and arm not in self.stopped:
            self.stopped[arm] = why
            log.warning("experiment %s: arm %s stopped, its traffic goes to %s: %s",
                        self.cfg.name, arm, self.cfg.control, why)


def arm_router_config(config: PointsmanConfig, where: str,
                      overrides: dict[str, Any]) -> PointsmanConfig:
    """The config an arm routes with (its overrides validated as a ``router`` section)."""
    try:
        router = RouterConfig.model_validate({**config.router.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'router'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"{where}.router: {problems}") from None
    return config.model_copy(update={"router": router})


def build_experiments(config: PointsmanConfig, experiments: Sequence[ExperimentConfig],
                      make_router: Callable[[PointsmanConfig], Router],
                      base: Router) -> dict[str, LiveExperiment]:
    """Every configured experiment with its arms' routers (an arm without overrides
    routes with ``base``, the gateway's own router)."""
    out: dict[str, LiveExperiment] = {}
    for i, cfg in enumerate(experiments):
        if cfg.name in out:
            raise ConfigError(f"experiments[{i}]: duplicate experiment name {cfg.name!r}")
        arms = []
        for j, arm in enumerate(cfg.arms):
            router = base if not arm.router else make_router(
                arm_router_config(config, f"experiments[{i}].arms[{j}]", arm.router))
            arms.append(Arm(cfg.name, arm.name, router))
        out[cfg.name] = LiveExperiment(cfg, arms)
    return out


def running(experiments: dict[str, LiveExperiment]) -> LiveExperiment | None:
    """The experiment that routes: the first enabled one."""
    return next((e for e in experiments.values() if e.cfg.enabled), None)
