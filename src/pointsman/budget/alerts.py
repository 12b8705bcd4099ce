"""Budget alerts: a log line and a webhook POST when a budget crosses a threshold, once per
threshold per window (the "already sent" marks live in the spend ledger, so replicas
sharing a ledger send each alert once between them).

The webhook body::

    {"event": "budget.threshold", "budget": "user:alice/day", "threshold": 0.8,
     "limit_usd": 5.0, "spent_usd": 4.1, "used_fraction": 0.82, "resets_at": "..."}
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from pointsman.budget.config import AlertsConfig
from pointsman.budget.ledger import Check, Totals, to_usd

if TYPE_CHECKING:
    from pointsman.budget.ledger import SpendLedger
    from pointsman.budget.windows import WindowSpan

log = logging.getLogger("pointsman.budget.alerts")


class Alerter:
    def __init__(self, cfg: AlertsConfig, ledger: SpendLedger,
                 client: httpx.AsyncClient | None = None) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self._client = client
        self._own_client = client is None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[dict[str, Any]] = []

    async def check(self, check: Check, limit_usd: float, total: Totals,
                    span: WindowSpan) -> None:
        used = to_usd(total.spent) / limit_usd if limit_usd > 0 else 1.0
        for threshold in sorted(self.cfg.thresholds):
            if used < threshold:
                break
            key = f"{check.charge}@{threshold}"
            if not await self.ledger.mark_alert(key, span.expires_at):
                continue
            body = {"event": "budget.threshold", "budget": check.budget,
                    "threshold": threshold, "limit_usd": limit_usd,
                    "spent_usd": to_usd(total.spent), "used_fraction": round(used, 4),
                    "resets_at": datetime.fromtimestamp(span.resets_at, UTC)
                    .isoformat(timespec="seconds")}
            log.warning("budget %s crossed %.0f%%: $%.4f of $%.2f spent", check.budget,
                        threshold * 100, body["spent_usd"], limit_usd)
            self.sent.append(body)
            if self.cfg.webhook_url:
                task = asyncio.create_task(self._post(body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        assert self.cfg.webhook_url is not None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.cfg.timeout_s)
        try:
            response = await self._client.post(self.cfg.webhook_url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error("budget alert webhook %s failed: %s", self.cfg.webhook_url, exc)

    async def drain(self) -> None:
        """Wait for the webhook POSTs in flight."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def aclose(self) -> None:
        await self.drain()
        if self._client is not None and self._own_client:
            await self._client.aclose()
