"""What the dashboard reads from the running gateway rather than the log: the latency
windows (p50/p95 per model and deployment), deployments in cooldown, budget positions and
alerts, and the online experiments' reports. Read-only: nothing here changes live state
(health is asked with ``available``, which takes no half-open probe slot)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pointsman.budget.spend import Scope, spend_report
from pointsman.errors import PointsmanError
from pointsman.jsonio import tidy_floats
from pointsman.types import LatencyStats

if TYPE_CHECKING:
    from pointsman.gateway.runtime import Gateway
    from pointsman.ui.queries import LogReader

DAY_S = 86400.0


def _stats(stats: LatencyStats) -> dict[str, Any]:
    return {"samples": stats.samples, "p50_total_ms": stats.p50_total_ms,
            "p95_total_ms": stats.p95_total_ms, "p50_ttft_ms": stats.p50_ttft_ms,
            "p95_ttft_ms": stats.p95_ttft_ms}


async def latency(gw: Gateway) -> dict[str, Any]:
    """The live windows per model and per deployment, and each deployment's health."""
    snapshot = await gw.latency.windows.snapshot()
    models = {k[2:]: _stats(v) for k, v in sorted(snapshot.items()) if k.startswith("m:")}
    deployments = {k[2:]: _stats(v) for k, v in sorted(snapshot.items())
                   if k.startswith("d:")}
    state = getattr(gw.health, "state", None)  # the in-process store says more
    health = []
    for model, names in sorted(gw.cooldown.deployments.items()):
        for name in names:
            available = await gw.health.available(name)
            health.append({"model": model, "deployment": name, "available": available,
                           "state": state(name) if state is not None else
                           ("closed" if available else "open")})
    cooling = sorted(await gw.cooldown.cooling())
    return {"models": models, "deployments": deployments, "health": health,
            "cooling_models": cooling, "window_s": gw.config.latency.window.seconds}


async def budgets(gw: Gateway, reader: LogReader) -> dict[str, Any]:
    """Each configured budget's position (spent against its limit, this window; a
    per-subject budget: its ten biggest spenders of the last day), the whole gateway's
    spend today and this month, and the alerts this process has sent."""
    cfg = gw.config.budgets
    ledger = getattr(gw.guard, "ledger", None)
    positions: list[dict[str, Any]] = []
    for limit in cfg.limits:
        row = {"scope": limit.scope, "subject": limit.subject, "window": limit.window,
               "limit_usd": limit.limit_usd, "limit_requests": limit.limit_requests}
        reportable = (limit.window != "rolling" and limit.limit_usd is not None
                      and limit.scope in ("global", "key", "user", "team"))
        if not reportable:  # rolling windows and session budgets: the limit only
            positions.append({**row, "report": None})
            continue
        scope: Scope | None = None if limit.scope == "global" else limit.scope  # type: ignore[assignment]
        subjects = ([None] if scope is None else [limit.subject] if limit.subject != "*"
                    else await reader.top_subjects(scope, time.time() - DAY_S))
        window: Literal["day", "month"] = "day" if limit.window == "day" else "month"
        for subject in subjects:
            report = await spend_report(cfg, gw, ledger, scope, subject, window)
            positions.append({**row, "subject": subject or "all", "report": report})
    sent = list(getattr(getattr(gw.guard, "alerter", None), "sent", []))
    day = await spend_report(cfg, gw, ledger, None, None, "day")
    month = await spend_report(cfg, gw, ledger, None, None, "month")
    out: dict[str, Any] = tidy_floats({"enabled": gw.guard is not None, "positions": positions,
                        "alerts": sent, "thresholds": list(cfg.alerts.thresholds),
                        "day": day, "month": month})
    return out


async def experiments(gw: Gateway) -> list[dict[str, Any]]:
    """Every configured experiment's report (arms, requests, cost, quality, guardrails)."""
    if gw.experiments is None:
        return []
    out = []
    for name in sorted(gw.experiments.live):
        try:
            out.append({"name": name, "report": await gw.experiments.report(gw, name)})
        except PointsmanError as exc:
            out.append({"name": name, "error": exc.message})
    return out
