"""An experiment's report: per arm the requests, cost per request, strong-model share,
quality (feedback and judged labels), p95 latency and savings against always calling the
strongest model, each with its 95% interval; per treated arm a verdict against the control
("B is 41% cheaper, quality non-inferior at margin 0.02, p = 0.003"); and the guardrail,
which stops an arm whose quality is below its bound with 95% confidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pointsman.experiments.config import ExperimentConfig
from pointsman.experiments.data import Row
from pointsman.experiments.stats import (
    mean_ci,
    mean_difference,
    proportion_ci,
    quantile_ci,
    relative_difference,
)

IsStrong = Callable[[str | None], bool]


def _arm(name: str, share: float, rows: Sequence[Row], is_strong: IsStrong) -> dict[str, Any]:
    ok = [r for r in rows if r.outcome == "ok"]
    spent, baseline = sum(r.cost_usd for r in rows), sum(r.baseline_cost_usd for r in rows)
    return {
        "arm": name, "share": share, "requests": len(rows), "errors": len(rows) - len(ok),
        "cost_per_request_usd": mean_ci([r.cost_usd for r in rows]).to_dict(),
        "strong_share": proportion_ci(sum(is_strong(r.model) for r in ok), len(ok)).to_dict(),
        "quality": mean_ci([r.quality for r in ok if r.quality is not None]).to_dict(),
        "p95_latency_ms": quantile_ci([r.total_ms for r in ok]).to_dict(),
        "savings_vs_strongest": (1 - spent / baseline) if baseline > 0 else None,
    }


def verdict(arm: str, control: str, cost: Sequence[float], cost0: Sequence[float],
            quality: Sequence[float], quality0: Sequence[float], margin: float
            ) -> tuple[str, dict[str, Any]]:
    """The sentence and the figures behind it."""
    change = relative_difference(cost, cost0)
    figures: dict[str, Any] = {"cost_change": None, "quality_change": None}
    if change is None:
        return f"{arm}: not enough requests yet to compare with {control}", figures
    figures["cost_change"] = {"value": change.value, "ci95": [change.low, change.high],
                              "p": change.p}
    how = "cheaper" if change.value < 0 else "more expensive"
    text = f"{arm} is {abs(change.value):.0%} {how} than {control}"
    q = mean_difference(quality, quality0, margin)
    if q is None:
        return text + "; too few quality labels to judge quality", figures
    figures["quality_change"] = {"value": q.value, "ci95": [q.low, q.high],
                                 "p_non_inferior": q.p, "margin": margin}
    assert q.p is not None
    if q.low > -margin:
        return text + (f", quality non-inferior at margin {margin:g}, p = {q.p:.3g}"), figures
    if q.high < -margin:
        return text + (f", quality worse by {-q.value:.3f} (95% CI {-q.high:.3f} to "
                       f"{-q.low:.3f}), beyond margin {margin:g}"), figures
    return text + (f", quality not shown non-inferior at margin {margin:g} "
                   f"(difference {q.value:+.3f}, p = {q.p:.3g})"), figures


def report(cfg: ExperimentConfig, rows: Sequence[Row], is_strong: IsStrong,
           stopped: dict[str, str] | None = None) -> dict[str, Any]:
    by_arm = {a.name: [r for r in rows if r.arm == a.name] for a in cfg.arms}
    arms = [_arm(a.name, a.share, by_arm[a.name], is_strong) for a in cfg.arms]
    control = by_arm[cfg.control]
    verdicts, comparisons = [], {}
    for a in cfg.arms:
        if a.name == cfg.control:
            continue
        text, figures = verdict(a.name, cfg.control, [r.cost_usd for r in by_arm[a.name]],
                                [r.cost_usd for r in control], _quality(by_arm[a.name]),
                                _quality(control), cfg.margin)
        verdicts.append(text)
        comparisons[a.name] = figures
    return {"experiment": cfg.name, "unit": cfg.unit, "control": cfg.control,
            "margin": cfg.margin, "enabled": cfg.enabled, "stopped": dict(stopped or {}),
            "arms": arms, "comparisons": comparisons, "verdicts": verdicts}


def _quality(rows: Sequence[Row]) -> list[float]:
    return [r.quality for r in rows if r.quality is not None and r.outcome == "ok"]


def guardrail_breaches(cfg: ExperimentConfig, rows: Sequence[Row]) -> dict[str, str]:
    """The treated arms whose quality is below the bound with 95% confidence, and why."""
    rail = cfg.guardrail
    out: dict[str, str] = {}
    if rail is None:
        return out
    for a in cfg.arms:
        if a.name == cfg.control:
            continue
        est = mean_ci(_quality([r for r in rows if r.arm == a.name]))
        if est.n >= rail.min_labels and est.high is not None and est.high < rail.min_quality:
            out[a.name] = (f"quality {est.value:.3f} (95% CI up to {est.high:.3f}) over "
                           f"{est.n} labels is below the bound {rail.min_quality:g}")
    return out
