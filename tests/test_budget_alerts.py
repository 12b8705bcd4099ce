"""Threshold alerts: a webhook POST with a JSON body and a log line, once per threshold
per window, received by a local HTTP server on a free port."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pointsman import RouteRequest, load_config
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.factory import build_guard
from pointsman.budget.sqlite_ledger import SqliteLedger
from pointsman.router import resolve_catalog

CATALOG = resolve_catalog(load_config())


class Receiver(ThreadingHTTPServer):
    bodies: list[dict[str, Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_each_threshold_alerts_once_per_window(receiver: Receiver, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    cfg = BudgetsConfig.model_validate({
        "limits": [{"scope": "team", "window": "month", "limit_usd": 1.0}],
        "alerts": {"webhook_url": url, "thresholds": [0.5, 0.9]}})
    request = RouteRequest.from_prompt("hi", metadata={"team": "core"})

    async def spend(amounts: list[float]) -> None:
        guard = build_guard(cfg, CATALOG, SqliteLedger(tmp_path / "spend.db"))
        for amount in amounts:
            await guard.settle(await guard.reserve(request, "gpt-4o-mini", amount), amount)
        await guard.aclose()

    with caplog.at_level(logging.WARNING, logger="pointsman.budget.alerts"):
        asyncio.run(spend([0.3, 0.3, 0.1]))    # crosses 0.5 once
        asyncio.run(spend([0.05, 0.2, 0.01]))  # a restart; crosses 0.9 once, not 0.5 again
    assert [b["threshold"] for b in receiver.bodies] == [0.5, 0.9]
    first = receiver.bodies[0]
    assert first["event"] == "budget.threshold"
    assert first["budget"] == "team:core/month"
    assert first["spent_usd"] == pytest.approx(0.6)
    assert first["limit_usd"] == 1.0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "team:core/month crossed 50%" in lines[0]
