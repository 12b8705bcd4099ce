"""Spend and savings: the report of ``pointsman spend`` and ``GET /v1/spend``.

Token totals (input, its prompt-cache reads and writes, output, its reasoning) come from
the request log too: the cost already prices the cache's share at the cache prices.

Spend against budgets comes from the spend ledger; top models and savings (cost against
always using the most expensive candidate: the log's ``baseline_cost_usd``, the same
actual tokens priced on the dearest of ``router.candidates``, see
:func:`pointsman.budget.cost.baseline_cost`) come from the request log through
:class:`SpendQueries`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pointsman.budget import windows
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.ledger import SpendLedger, to_nanos, to_usd

Scope = Literal["key", "user", "team"]


@dataclass(frozen=True, slots=True)
class ModelSpend:
    model: str
    requests: int
    cost_usd: float
    baseline_cost_usd: float


@dataclass(frozen=True, slots=True)
class TokenTotals:
    """Token sums over the log's rows: ``prompt`` is all input (``cache_read`` and
    ``cache_write`` are its prompt-cache share), ``completion`` all output (``reasoning``
    its hidden share)."""

    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion,
                "cache_read": self.cache_read, "cache_write": self.cache_write,
                "reasoning": self.reasoning}


NO_TOKENS = TokenTotals()
TOKEN_SUMS = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens",
              "reasoning_tokens")  # the request log's columns, in TokenTotals' order


@dataclass(frozen=True, slots=True)
class SpendSummary:
    requests: int
    cost_usd: float
    baseline_cost_usd: float
    by_model: tuple[ModelSpend, ...]
    tokens: TokenTotals = NO_TOKENS

    @property
    def savings_usd(self) -> float:
        return self.baseline_cost_usd - self.cost_usd


@runtime_checkable
class SpendQueries(Protocol):
    async def spend_summary(self, scope: Scope | None, subject: str | None, since: float,
                            until: float, top: int = 5) -> SpendSummary:
        """Requests, cost and baseline cost in ``[since, until)``, optionally for one
        key / user / team, with the ``top`` models by cost."""
        ...


@runtime_checkable
class LabelQueries(Protocol):
    """The label store's figures beside the spend (see :mod:`pointsman.stores.labels`)."""

    async def quality(self, scope: Scope | None, subject: str | None, since: float,
                      until: float) -> dict[str, tuple[int, float | None]]:
        """Per kind of label (``feedback``, ``judge``): how many labels the requests of
        ``[since, until)`` have for the model that answered, and their mean score."""
        ...

    async def spend(self, source: str, since: float, until: float) -> tuple[int, float]:
        ...


async def label_figures(labels: LabelQueries, scope: Scope | None, subject: str | None,
                        since: float, until: float) -> dict[str, Any]:
    """``quality`` (beside the savings) and ``judging`` (judged samples: their own spend,
    never in the requests' spend above) for the report."""
    found = await labels.quality(scope, subject, since, until)
    quality = {kind: {"labels": n, "mean": mean} for kind, (n, mean)
               in ((k, found.get(k, (0, None))) for k in ("judge", "feedback"))}
    samples, cost = await labels.spend("judge", since, until)
    return {"quality": quality, "judging": {"samples": samples, "cost_usd": cost}}


def _limit_for(cfg: BudgetsConfig, scope: Scope | None, window: str) -> float | None:
    limits = [lim.limit_usd for lim in cfg.limits if lim.scope == (scope or "global")
              and lim.window == window and lim.limit_usd is not None]
    for plan in cfg.plans.values():
        limits += [lim.limit_usd for lim in plan.budgets if lim.scope == scope
                   and lim.window == window and lim.limit_usd is not None]
    return min(limits) if limits else None


async def spend_report(cfg: BudgetsConfig, queries: SpendQueries, ledger: SpendLedger | None,
                       scope: Scope | None, subject: str | None,
                       window: Literal["day", "month"], now: float | None = None,
                       labels: LabelQueries | None = None) -> dict[str, Any]:
    """The JSON report: window, spend, budget, remaining, top models and savings (with
    ``labels``: the quality beside them and the judging spend, on its own)."""
    now = time.time() if now is None else now
    zone = ZoneInfo(cfg.timezone)
    span = windows.calendar(window, now, zone)
    since = _window_start(window, now, zone)
    summary = await queries.spend_summary(scope, subject, since, now + 1)
    limit = _limit_for(cfg, scope, window)
    spent = summary.cost_usd
    if ledger is not None and limit is not None:  # the ledger keeps budgeted scopes only
        base = f"{scope}:{subject}" if scope else "global:all"
        [total] = await ledger.totals([[f"{base}:{span.charge}"]], now)
        spent = to_usd(total.spent)
    return {
        "scope": scope or "global", "subject": subject, "window": window,
        "since": windows.iso(since, zone), "resets_at": windows.iso(span.resets_at, zone),
        "requests": summary.requests, "spent_usd": spent,
        "logged_cost_usd": summary.cost_usd, "budget_usd": limit,
        "remaining_usd": None if limit is None else to_usd(max(0, to_nanos(limit - spent))),
        "baseline_cost_usd": summary.baseline_cost_usd, "savings_usd": summary.savings_usd,
        "savings_fraction": (summary.savings_usd / summary.baseline_cost_usd
                             if summary.baseline_cost_usd > 0 else 0.0),
        "top_models": [{"model": m.model, "requests": m.requests, "cost_usd": m.cost_usd,
                        "baseline_cost_usd": m.baseline_cost_usd} for m in summary.by_model],
        "tokens": summary.tokens.to_dict(),
        **(await label_figures(labels, scope, subject, since, now + 1)
           if labels is not None else {}),
    }


def _window_start(window: str, now: float, zone: ZoneInfo) -> float:
    local = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0,
                                                      microsecond=0)
    if window == "month":
        local = local.replace(day=1)
    return local.timestamp()
