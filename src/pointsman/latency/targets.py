"""Latency targets: which target a request has, and what it does to the candidates (pure).

A request's target comes from metadata ``latency_target_ms`` (the gateway fills it from the
``x-pointsman-latency-target-ms`` header) or from its ``use_case`` preset; an explicit
target overrides the preset's number but keeps its metric (TTFT or total). A candidate
*meets* the target when its expected p95 (live, else the catalog's typical latency when
``use_catalog_prior`` is on, else unknown = meets) is at most the target.

- ``exclude``: candidates that miss it are filtered out (listed in the decision's
  ``filtered_out``);
- ``penalise``: they stay, with ``penalty`` subtracted from their weighted score (it shows
  as a negative ``bonus``);
- either way, when *no* candidate meets the target the fastest is taken and the others
  stay as its fallbacks. The decision's reason says which happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pointsman.errors import InputError
from pointsman.latency.config import LatencyConfig, Metric, TargetsConfig
from pointsman.types import LiveState, ModelSpec, RouteRequest


@dataclass(frozen=True, slots=True)
class Target:
    ms: float
    metric: Metric
    source: str  # "request" or "use case <name>"

    def describe(self) -> str:
        return f"{self.ms:g} ms {self.metric} target ({self.source})"


@dataclass(frozen=True, slots=True)
class LatencyGate:
    """What the target did: the candidates left, extra exclusions, the state to score with,
    the forced choice (fastest, when none meets the target) and a note for the reason."""

    eligible: list[ModelSpec]
    state: LiveState
    filtered: dict[str, str] = field(default_factory=dict)
    forced: ModelSpec | None = None
    note: str = ""


def _number(raw: object) -> float:
    if isinstance(raw, bool):
        raise InputError("latency_target_ms must be a positive number", "latency_target_ms")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"latency_target_ms must be a positive number, got {raw!r}",
                         "latency_target_ms") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"latency_target_ms must be a positive number, got {raw!r}",
                         "latency_target_ms")
    return value


def request_target(request: RouteRequest, cfg: TargetsConfig) -> Target | None:
    """The request's latency target, or None (no target, or a preset without one)."""
    meta = request.metadata
    raw, use_case = meta.get("latency_target_ms"), meta.get("use_case")
    metric: Metric = cfg.metric
    preset_ms: float | None = None
    if use_case is not None:
        preset = cfg.use_cases.get(str(use_case))
        if preset is None:
            known = ", ".join(sorted(cfg.use_cases)) or "none"
            raise InputError(f"unknown use_case {use_case!r}; known: {known}", "use_case")
        metric, preset_ms = preset.metric, preset.target_ms
    if raw is not None:
        return Target(_number(raw), metric, "request")
    if preset_ms is None:
        return None
    return Target(preset_ms, metric, f"use case {use_case}")


def expected_p95(spec: ModelSpec, state: LiveState, metric: Metric, prior: bool
                 ) -> float | None:
    """Live p95 of ``metric``; else the catalog's typical latency (``prior``) or None."""
    stats = state.latency.get(spec.name)
    if stats is not None and stats.samples > 0:
        return stats.p95_ttft_ms if metric == "ttft" else stats.p95_total_ms
    if not prior:
        return None
    return spec.ttft_ms if metric == "ttft" else spec.latency_ms


def _describe(spec: ModelSpec, state: LiveState, metric: Metric, value: float | None) -> str:
    stats = state.latency.get(spec.name)
    if stats is not None and stats.samples > 0:
        return f"p95 {metric} {value:.0f} ms (live)"
    return f"typical {metric} {value:.0f} ms (catalog)"


def apply_target(eligible: Sequence[ModelSpec], state: LiveState, target: Target | None,
                 cfg: TargetsConfig) -> LatencyGate:
    """Exclude, penalise or force the fastest according to ``target`` (see module doc)."""
    if target is None or not eligible:
        return LatencyGate(list(eligible), state)
    p95 = {s.name: expected_p95(s, state, target.metric, cfg.use_catalog_prior)
           for s in eligible}
    slow = [s for s in eligible if (v := p95[s.name]) is not None and v > target.ms]
    if not slow:
        return LatencyGate(list(eligible), state,
                           note=f"; every candidate meets the {target.describe()}")
    why = {s.name: f"{_describe(s, state, target.metric, p95[s.name])} > latency target "
                   f"{target.ms:g} ms" for s in slow}
    if len(slow) == len(eligible):
        fastest = min(eligible, key=lambda s: (p95[s.name] or 0.0, s.name))
        return LatencyGate(list(eligible), state, forced=fastest, note=(
            f"no candidate meets the {target.describe()}: took the fastest, {fastest.name} "
            f"({_describe(fastest, state, target.metric, p95[fastest.name])})"))
    names = ", ".join(why)
    if cfg.mode == "exclude":
        return LatencyGate([s for s in eligible if s.name not in why], state, filtered=why,
                           note=f"; {target.describe()} excluded {names}")
    bonus = dict(state.bandit_bonus)
    for name in why:
        bonus[name] = bonus.get(name, 0.0) - cfg.penalty
    return LatencyGate(list(eligible), state.replace(bandit_bonus=bonus),
                       note=f"; {target.describe()} penalised {names} by {cfg.penalty:g}")


def latency_gate(eligible: Sequence[ModelSpec], request: RouteRequest, state: LiveState,
                 cfg: LatencyConfig) -> LatencyGate:
    """The router's one call: the request's target applied to ``eligible``."""
    meta = request.metadata
    if not cfg.enabled or ("latency_target_ms" not in meta and "use_case" not in meta):
        return LatencyGate(list(eligible), state)  # no target (the common case, made quick)
    return apply_target(eligible, state, request_target(request, cfg.targets), cfg.targets)
