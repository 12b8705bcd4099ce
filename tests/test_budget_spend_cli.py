"""``pointsman spend``: spend from the ledger, budget, remaining, top models and savings
from the request log."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pointsman import RouteRequest, load_config
from pointsman.budget.factory import build_guard, build_ledger
from pointsman.budget.http import spend_route
from pointsman.cli import app
from pointsman.errors import InputError
from pointsman.requestlog import RequestRecord
from pointsman.router import resolve_catalog
from pointsman.stores.labels_sqlite import SqliteLabelStore
from pointsman.stores.requestlog_sqlite import SqliteRequestLog


def record(i: int, user: str, model: str, cost: float) -> RequestRecord:
    return RequestRecord(
        id=f"r{i}", ts=time.time(), key="k1", user=user, team="core", session=None,
        requested_model="auto", decision={}, models_tried=[model], outcome="ok", error=None,
        model=model, prompt_tokens=100, completion_tokens=50, cost_usd=cost,
        baseline_cost_usd=0.05, ttft_ms=None, total_ms=10.0)


def setup(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "pointsman.yaml"
    config.write_text(yaml.safe_dump({"budgets": {
        "sqlite_path": str(tmp_path / "spend.db"), "alerts": {"thresholds": []},
        "limits": [{"scope": "user", "window": "day", "limit_usd": 2.0}]}}))
    cfg = load_config(config)
    spends = [("alice", "gpt-4.1", 0.03), ("alice", "gpt-4o-mini", 0.001),
              ("alice", "gpt-4.1", 0.02), ("bob", "claude-opus-4-5", 0.05)]

    async def fill() -> None:
        guard = build_guard(cfg.budgets, resolve_catalog(cfg), build_ledger(cfg.budgets))
        log = SqliteRequestLog(tmp_path / "requests.db")
        for i, (user, model, cost) in enumerate(spends):
            request = RouteRequest.from_prompt("x", metadata={"user": user})
            await guard.settle(await guard.reserve(request, model, cost), cost)
            await log.write(record(i, user, model, cost))
        await log.aclose()
        await guard.aclose()
    asyncio.run(fill())
    return config, tmp_path / "requests.db"


def test_spend_json_for_one_user(tmp_path: Path) -> None:
    config, log = setup(tmp_path)
    result = CliRunner().invoke(app, ["spend", "--user", "alice", "--json", "--config",
                                      str(config), "--log", str(log)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["requests"] == 3
    assert abs(report["spent_usd"] - 0.051) < 1e-9
    assert report["budget_usd"] == 2.0
    assert abs(report["remaining_usd"] - 1.949) < 1e-9
    assert abs(report["savings_usd"] - (0.15 - 0.051)) < 1e-9
    assert [m["model"] for m in report["top_models"]] == ["gpt-4.1", "gpt-4o-mini"]


def test_spend_text_for_everyone(tmp_path: Path) -> None:
    config, log = setup(tmp_path)
    result = CliRunner().invoke(app, ["spend", "--config", str(config), "--log", str(log),
                                      "--window", "month"])
    assert result.exit_code == 0, result.output
    assert "everyone, this month" in result.output
    assert "over 4 requests" in result.output and "claude-opus-4-5" in result.output


def test_two_scopes_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["spend", "--user", "a", "--team", "b"])
    assert isinstance(result.exception, InputError)


def test_http_spend_matches_the_cli_and_needs_an_admin_key(tmp_path: Path) -> None:
    config, log_path = setup(tmp_path)
    cli = CliRunner().invoke(app, ["spend", "--user", "alice", "--json", "--config",
                                   str(config), "--log", str(log_path)])
    cfg = load_config(config)
    ledger = build_ledger(cfg.budgets)
    log = SqliteRequestLog(log_path)
    labels = SqliteLabelStore(log_path)  # quality and judging spend, as the CLI shows
    api = Starlette(routes=[spend_route(cfg.budgets, log, ledger, admin_keys=["sk-admin"],
                                        labels=lambda request: labels)])
    with TestClient(api) as client:
        ok = client.get("/v1/spend", params={"user": "alice"},
                        headers={"authorization": "Bearer sk-admin"})
        denied = client.get("/v1/spend", headers={"authorization": "Bearer sk-user"})
        missing = client.get("/v1/spend")
        bad = client.get("/v1/spend", params={"user": "a", "key": "b"},
                         headers={"authorization": "Bearer sk-admin"})
    assert ok.status_code == 200 and ok.json() == json.loads(cli.output)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert missing.status_code == 401
    assert bad.status_code == 400
    asyncio.run(log.aclose())
    asyncio.run(labels.aclose())
    asyncio.run(ledger.aclose())
