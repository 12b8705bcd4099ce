"""The dashboard's JSON API and page over HTTP, against a gateway serving stub traffic:
admin keys only, security headers, figures equal to the request log's, filters, one
request's decision; and with the dashboard off, no route at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub
from ui_support import ADMIN, ALICE, HOSTILE, logged, send_traffic, write_config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("ui-api")
    with UpstreamStub() as stub, running(create_app(load_config(write_config(tmp, stub)))) as url:
        send_traffic(url, stub)
        yield url, logged(tmp / "requests.db")


def get(url: str, path: str, key: str | None = ADMIN) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{url}{path}", headers=headers, timeout=30)


def test_admin_only(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    assert get(url, "/ui/api/overview", None).status_code == 401
    refused = get(url, "/ui/api/overview", ALICE)
    assert refused.status_code == 403
    assert "admin key required" in refused.json()["error"]["message"]
    assert get(url, "/ui/api/overview", "not-a-key-at-all").status_code == 401
    assert get(url, "/ui/api/requests", ALICE).status_code == 403
    assert get(url, "/ui/api/overview").status_code == 200


def test_headers_and_static_files(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    for path in ("/ui", "/ui/static/app.js", "/ui/api/overview"):
        response = get(url, path)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert get(url, "/ui/static/..%2Fhttp.py").status_code == 404
    assert get(url, "/ui/static/index.html.bak").status_code == 404


def test_overview_matches_the_log(served: tuple[str, dict[str, Any]]) -> None:
    url, log = served
    body = get(url, "/ui/api/overview?window=3600").json()
    totals = body["totals"]
    assert totals["requests"] == log["requests"] == 7
    assert totals["failed"] == log["failed"] == 1
    assert totals["cost_usd"] == pytest.approx(log["cost_usd"])
    assert totals["baseline_cost_usd"] == pytest.approx(log["baseline_cost_usd"])
    assert totals["savings_usd"] == pytest.approx(log["baseline_cost_usd"] - log["cost_usd"])
    assert sum(b["requests"] for b in body["series"]) == 7


def test_routing_shares(served: tuple[str, dict[str, Any]]) -> None:
    url, log = served
    body = get(url, "/ui/api/routing").json()
    by_model = {m: sum(n for _, n in cells) for m, cells in body["by"]["model"].items()}
    assert by_model == log["by_model"]
    reasons = {r: sum(n for _, n in cells) for r, cells in body["by"]["reason"].items()}
    assert reasons["explicit"] == 4 and sum(reasons.values()) == 7
    tiers = {t: sum(n for _, n in cells) for t, cells in body["by"]["tier"].items()}
    assert sum(tiers.values()) == 7


def test_request_browser_filters_and_decision(served: tuple[str, dict[str, Any]]) -> None:
    url, log = served
    alice = get(url, "/ui/api/requests?user=alice").json()
    assert len(alice["requests"]) == log["by_user"]["alice"] == 4
    assert {r["user"] for r in alice["requests"]} == {"alice"}
    assert "bob" in alice["choices"]["user"]
    failed = get(url, "/ui/api/requests?outcome=error").json()["requests"]
    assert len(failed) == 1 and failed[0]["user"] == "bob"
    hostile = [r for r in alice["requests"] if r["prompt"] == HOSTILE]
    assert len(hostile) == 1
    record = get(url, f"/ui/api/requests/{hostile[0]['id']}").json()
    assert record["messages"][0]["content"] == HOSTILE
    assert record["decision"]["reason"].startswith("model ")
    auto = next(r for r in alice["requests"] if r["requested_model"] == "auto")
    decision = get(url, f"/ui/api/requests/{auto['id']}").json()["decision"]
    assert decision["candidates"] and "complexity" in decision["scores"]
    assert get(url, "/ui/api/requests/no-such-id").status_code == 404


def test_latency_budgets_experiments(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    lat = get(url, "/ui/api/latency").json()
    assert lat["models"]["gpt-4o-mini"]["samples"] >= 1
    assert lat["models"]["gpt-4o-mini"]["p95_total_ms"] > 0
    assert {h["model"] for h in lat["health"]} >= {"gpt-4o-mini", "gpt-4.1", "claude-haiku-4-5"}
    budgets = get(url, "/ui/api/budgets").json()
    scopes = {(p["scope"], p["subject"]) for p in budgets["positions"]}
    assert ("global", "all") in scopes and ("user", "alice") in scopes
    assert budgets["day"]["requests"] == 7
    body = get(url, "/ui/api/experiments").json()
    [experiment] = body["experiments"]
    assert experiment["name"] == "stricter"
    arms = {a["arm"]: a["requests"] for a in experiment["report"]["arms"]}
    assert sum(arms.values()) == 3  # alice's three auto requests
    assert body["labels"] == [{"source": "user", "model": "gpt-4o-mini", "labels": 1,
                               "mean_score": 1.0}]


def test_odd_parameters_are_tamed(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    for query in ("window=abc", "window=-5", "window=99999999999", "limit=-3&before=x",
                  "limit=100000", "user=%00%27%22;--"):
        response = get(url, f"/ui/api/requests?{query}")
        assert response.status_code == 200, query
        assert len(response.json()["requests"]) <= 200
    assert get(url, "/ui/api/overview?window=1").json()["step"] == 15  # 15 minutes / 60


def test_dashboard_off_mounts_nothing(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        app = create_app(load_config(write_config(tmp_path, stub, ui=False)))
        assert not [r for r in app.routes if getattr(r, "path", "").startswith("/ui")]
        with running(app) as url:
            for path in ("/ui", "/ui/api/overview", "/ui/static/app.js"):
                assert get(url, path).status_code == 404
