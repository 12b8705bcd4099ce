"""``pointsman judge``: judged samples over a replayed request log. Every answered record
that has its prompt (``gateway.request_log.log_messages: true``) is judged like a live
sample, once (a record that already has a ``judge`` label is skipped unless asked again).
The log keeps no answers, so the model that answered asks the prompt again first; that
call, the reference's and the judge's are all charged to the judging budget (the day's cap
of ``judging.budget_usd``, counting what the log's judge labels spent today) and stored
with the label, in the log's own database."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from pointsman.config import PointsmanConfig
from pointsman.errors import BudgetExceededError, PointsmanError
from pointsman.evaluation.logdb import _sqlite_path, db_records
from pointsman.executor import DeploymentSource
from pointsman.judging.service import SOURCE, Judged, Judging, Sample
from pointsman.judging.wiring import make_judging
from pointsman.router import resolve_catalog
from pointsman.stores.labels import LabelStore, open_label_store
from pointsman.types import RouteRequest


def replayable(item: Mapping[str, Any]) -> bool:
    return (item.get("outcome") == "ok" and bool(item.get("model"))
            and bool(item.get("messages")))


async def open_labels(source: str) -> LabelStore:
    if source.startswith(("postgresql://", "postgres://")):
        dsn, _, schema = source.partition("#")
        return await open_label_store("", dsn, schema or "pointsman")
    return await open_label_store(_sqlite_path(source))


async def judge_log(cfg: PointsmanConfig, source: str, deployments: DeploymentSource, *,
                    limit: int | None = None, again: bool = False) -> dict[str, Any]:
    """Judge the log's replayable records; the summary (counts, spend, mean score)."""
    answered = [item for _, _, item in db_records(source)
                if item.get("outcome") == "ok" and item.get("model")]
    ready = [item for item in answered if replayable(item)]
    items = ready[:limit]
    judging = make_judging(cfg.judging, resolve_catalog(cfg), deployments,
                           cfg.gateway.retry, CollectorRegistry())
    labels = await open_labels(source)
    await judging.attach(labels)  # no workers: the replay judges itself, as bounded here
    gate = asyncio.Semaphore(cfg.judging.max_concurrency)
    scores: list[float] = []
    try:
        async def one(item: Mapping[str, Any]) -> None:
            async with gate:
                judged = await judge_record(judging, labels, item, again)
            if judged.label is not None:
                scores.append(judged.label.score)
            await judging.store(judged)
        await asyncio.gather(*(one(item) for item in items))
    finally:
        await labels.aclose()
    counts = judging.counts
    return {"records": len(items), "without_prompt": len(answered) - len(ready),
            "judged": counts.get("judged", 0),
            "skipped": counts.get("skipped", 0), "refused": counts.get("refused", 0),
            "failed": counts.get("failed", 0), "spent_usd": judging.budget.spent_usd,
            "mean_score": sum(scores) / len(scores) if scores else None,
            "mode": cfg.judging.mode, "reference_model": cfg.judging.reference_model,
            "judge_model": cfg.judging.judge_model}


async def judge_record(judging: Judging, labels: LabelStore, item: Mapping[str, Any],
                       again: bool) -> Judged:
    """One record: its model answers again, then it is judged as a live sample."""
    rid, model = str(item["id"]), str(item["model"])
    if not again and any(lb.source == SOURCE for lb in await labels.labels(rid)):
        return Judged("skipped", why=f"{rid}: judged already")
    if model not in judging.executor.catalog:
        return Judged("skipped", why=f"{rid}: model {model!r} is not in the catalog")
    messages = list(item["messages"])
    spent = [0.0]
    try:
        answer = await judging.call(judging.executor.catalog.get(model), RouteRequest(
            messages=()), messages, judging.cfg.max_tokens, spent)
    except BudgetExceededError as exc:
        return Judged("refused", why=exc.message)
    except (PointsmanError, TimeoutError) as exc:
        return Judged("failed", why=exc.message if isinstance(exc, PointsmanError)
                      else "timed out")
    judged = await judging.judge(Sample(rid, RouteRequest(messages=()), messages, model,
                                        answer))
    if judged.label is None:
        return replace(judged, cost_usd=judged.cost_usd + spent[0])
    total = judged.label.cost_usd + spent[0]
    return replace(judged, label=replace(judged.label, cost_usd=total), cost_usd=total)
