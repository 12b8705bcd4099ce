"""Shared pieces of the budget-through-the-gateway tests: a config over the upstream stub,
the request log and spend ledger as a user would read them, our own redis-server, and a
webhook receiver on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from pointsman.budget import windows
from pointsman.budget.factory import build_ledger
from pointsman.budget.ledger import Totals, to_nanos
from pointsman.config import PointsmanConfig, load_config
from pointsman.testing.upstream import UpstreamStub

MODELS = ["gpt-4o-mini", "gpt-4.1-mini", "claude-haiku-4-5", "gpt-4.1"]


def write_config(tmp_path: Path, stub: UpstreamStub, budgets: dict[str, Any], *,
                 candidates: Sequence[str] = MODELS, rules: Sequence[Any] = (),
                 keys: Sequence[Any] = (), log_name: str = "requests.db") -> PointsmanConfig:
    """A gateway config whose every model is served by the stub (haiku over the Anthropic
    wire format, the rest over OpenAI's)."""
    deployments = {m: [{"endpoint": "stub-anthropic" if m.startswith("claude") else
                        "stub-openai"}] for m in MODELS}
    data = {
        "router": {"candidates": list(candidates)},
        "rules": list(rules),
        "providers": {
            "endpoints": {"stub-openai": {"kind": "openai", "base_url": stub.base_url},
                          "stub-anthropic": {"kind": "anthropic", "base_url": stub.url}},
            "timeouts": {"connect": 1, "first_token": 2, "total": 5},
            "deployments": deployments},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / log_name)},
                    "retry": {"max_retries": 0}, "keys": list(keys)},
        "budgets": budgets,
    }
    path = tmp_path / f"pointsman-{log_name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def logged(path: Path) -> list[dict[str, Any]]:
    """The request log's rows (read after the gateway has stopped and flushed it)."""
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM requests ORDER BY ts")]
    finally:
        conn.close()


def logged_nanos(rows: Sequence[dict[str, Any]]) -> int:
    return sum(to_nanos(row["cost_usd"]) for row in rows)


def ledger_totals(cfg: PointsmanConfig, base: str, window: str = "day") -> Totals:
    """The spend ledger's totals of one budget subject (``user:alice``, ``global:all``)
    over the current calendar window, read through a fresh ledger on the same store."""
    async def read() -> Totals:
        ledger = build_ledger(cfg.budgets)
        now = time.time()
        span = windows.calendar(window, now, ZoneInfo(cfg.budgets.timezone))
        try:
            [total] = await ledger.totals([[f"{base}:{span.charge}"]], now)
        finally:
            await ledger.aclose()
        return total
    return asyncio.run(read())


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny HTTP server on 127.0.0.1:0 that keeps every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
