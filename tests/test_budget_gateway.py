"""Budgets end to end: the official ``openai`` SDK → the gateway (uvicorn on 127.0.0.1:0,
real adapters, the SQLite spend ledger) → the upstream stub. Actual cost against the
ledger, the request log and the headers; downgrade near the cap; restart; alerts;
savings in ``/v1/spend`` and ``pointsman spend``; freemium request limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from budget_gateway_support import (
    MODELS,
    ledger_totals,
    logged,
    logged_nanos,
    webhook_receiver,
    write_config,
)
from gateway_harness import running
from pointsman.budget.factory import build_guard
from pointsman.budget.ledger import to_nanos
from pointsman.cli import app as cli_app
from pointsman.config import PointsmanConfig, load_config
from pointsman.gateway.app import create_app
from pointsman.router import resolve_catalog
from pointsman.testing.upstream import UpstreamStub
from pointsman.tokens import estimate_message_tokens, estimate_text_tokens
from pointsman.types import RouteRequest

CATALOG = resolve_catalog(load_config())


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(stub: UpstreamStub) -> None:
    stub.reset()


def ask(text: str = "What is the capital of France?", **extra: Any) -> Any:
    return {"messages": [{"role": "user", "content": text}], **extra}


def prompt_estimate(text: str) -> int:
    """The gateway's estimate of a one-message prompt (no tokenizer: chars and framing)."""
    return estimate_message_tokens(RouteRequest.from_prompt(text).messages)


def price(model: str, usage: Any) -> float:
    return CATALOG.get(model).cost(usage.prompt_tokens, usage.completion_tokens)


def client_for(url: str, key: str = "unused", **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0,
                         default_headers=headers or None)


def sqlite_budgets(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"), **extra}


# -- 1. actual cost = ledger = request log = header ----------------------------------------

def _stream(client: openai.OpenAI, model: str, text: str, usage: bool) -> tuple[str, Any, Any]:
    options: Any = {"stream_options": {"include_usage": True}} if usage else {}
    raw = client.chat.completions.with_raw_response.create(
        model=model, stream=True, **ask(text), **options)
    assert raw.headers["x-pointsman-cost-estimated"] == "true"
    chunks = list(raw.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return content, chunks[-1].usage, raw.headers


def test_actual_cost_equals_ledger_log_and_header(stub: UpstreamStub, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, stub, sqlite_budgets(
        tmp_path, limits=[{"scope": "global", "limit_usd": 100}]))
    expected: list[float] = []
    with running(create_app(cfg)) as url, client_for(url) as client:
        for model in ("gpt-4o-mini", "claude-haiku-4-5"):  # OpenAI and Anthropic adapters
            raw = client.chat.completions.with_raw_response.create(model=model, **ask())
            answer = raw.parse()
            assert answer.usage is not None
            expected.append(price(model, answer.usage))
            assert float(raw.headers["x-pointsman-cost-usd"]) == pytest.approx(
                expected[-1], abs=1e-8)
        # a stream with the upstream's usage chunk, asked for by the client
        _, usage, _ = _stream(client, "gpt-4.1-mini", "Name three rivers", usage=True)
        expected.append(price("gpt-4.1-mini", usage))
        # the client did not ask: the gateway still asks the upstream and costs from it
        text, usage, _ = _stream(client, "gpt-4.1", "Name two lakes please", usage=False)
        assert usage is None
        expected.append(CATALOG.get("gpt-4.1").cost(1 + 4, len(text.split())))
        # the upstream sends no usage at all: counted tokens (prompt estimate, streamed text)
        stub.behave("claude-haiku-4-5", usage=False)
        stub.behave("gpt-4o-mini", usage=False, tokens=40)
        text, usage, _ = _stream(client, "gpt-4o-mini", "Tell me a story", usage=True)
        assert usage.completion_tokens == estimate_text_tokens(text) != 40
        assert usage.prompt_tokens == prompt_estimate("Tell me a story")
        expected.append(price("gpt-4o-mini", usage))
    rows = logged(tmp_path / "requests.db")
    # costs are whole nanodollars (the ledger's unit): compared in it, float noise aside
    assert sorted(to_nanos(r["cost_usd"]) for r in rows) == sorted(map(to_nanos, expected))
    assert all(to_nanos(CATALOG.get(r["model"]).cost(r["prompt_tokens"], r["completion_tokens"]))
               == to_nanos(r["cost_usd"]) and r["cost_usd"] == to_nanos(r["cost_usd"]) / 1e9
               for r in rows)
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows) == sum(to_nanos(c) for c in expected)
    assert total.held == 0


# -- 3. the Pro user near the cap is stepped down, neither refused nor overspent -------------

PRO_RULES = [{"name": "pro-gets-premium", "when": {"plan": ["pro"]},
              "then": {"tier": "premium"}}]
COMPLEX = ("Design and prove correct a lock-free concurrent hash map; analyse the memory "
           "ordering of every step and compare it with two alternatives. " * 145)


def _seed(cfg: PointsmanConfig, user: str, usd: float) -> None:
    """Spend already made today (earlier requests), through the budget guard itself."""
    import asyncio

    async def spend() -> None:
        guard = build_guard(cfg.budgets, resolve_catalog(cfg))
        request = RouteRequest.from_prompt("earlier", metadata={"user": user, "plan": "pro"})
        hold = await guard.reserve(request, "gpt-4.1", usd / cfg.budgets.cost_margin)
        await guard.settle(hold, usd)
        await guard.aclose()
    asyncio.run(spend())


def test_pro_user_near_the_cap_is_stepped_down_not_refused(stub: UpstreamStub,
                                                           tmp_path: Path) -> None:
    cfg = write_config(tmp_path, stub, sqlite_budgets(tmp_path, plans={"pro": {
        "budgets": [{"scope": "user", "limit_usd": 5.0}]}}), rules=PRO_RULES)
    body = ask(COMPLEX, max_tokens=2500)
    premium = CATALOG.get("gpt-4.1").cost(prompt_estimate(body["messages"][0]["content"]), 2500)
    assert 0.025 < premium < 0.035  # the "premium cost would be ~$0.03"
    _seed(cfg, "carol", 4.85)
    _seed(cfg, "erin", 4.10)
    seen: dict[str, tuple[str, str, float]] = {}
    with running(create_app(cfg)) as url:
        for user in ("dave", "erin", "carol"):
            with client_for(url, **{"x-pointsman-user": user, "x-pointsman-plan": "pro"}) as c:
                raw = c.chat.completions.with_raw_response.create(model="auto", **body)
                seen[user] = (raw.headers["x-pointsman-model"], raw.headers[
                    "x-pointsman-reason"], float(raw.headers["x-pointsman-cost-usd"]))
    assert seen["dave"][0] == "gpt-4.1" and "pro-gets-premium" in seen["dave"][1]
    model, reason, _ = seen["erin"]  # 82%: the 80% step allows mid tiers at most
    assert CATALOG.get(model).tier == "mid"
    assert "budget user:erin/day" in reason and "(82%)" in reason
    assert "past the 80% step: budget stepped down to tier mid" in reason
    model, reason, cost = seen["carol"]  # 97%: the 95% step, cheap only, and it must fit
    assert CATALOG.get(model).tier == "cheap"
    assert "$4.8500 of $5.00 spent (97%), $0.1500 left" in reason
    assert "past the 95% step: budget stepped down to tier cheap" in reason
    estimate = CATALOG.get(model).cost(prompt_estimate(body["messages"][0]["content"]), 2500)
    assert estimate * cfg.budgets.cost_margin < 0.15
    carol = ledger_totals(cfg, "user:carol")
    assert carol.spent == to_nanos(4.85) + to_nanos(cost) < to_nanos(5.0)
    assert carol.held == 0


# -- 4. spend survives a restart (two app instances on one SQLite file) ---------------------

def test_spend_survives_a_gateway_restart(stub: UpstreamStub, tmp_path: Path) -> None:
    spec = CATALOG.get("gpt-4o-mini")
    body = ask("Summarise the plot of Hamlet", max_tokens=30)
    stub.behave("*", tokens=30)
    reserve = to_nanos(spec.cost(prompt_estimate(body["messages"][0]["content"]), 30) * 1.2)
    budgets = sqlite_budgets(tmp_path, admin_keys=["sk-admin-0123456789"], limits=[
        {"scope": "user", "limit_usd": 4 * reserve / 1e9}])
    cfg = write_config(tmp_path, stub, budgets, candidates=["gpt-4o-mini"])
    headers = {"x-pointsman-user": "ulla"}
    with running(create_app(cfg)) as url, client_for(url, **headers) as client:
        costs = [float(client.chat.completions.with_raw_response.create(
            model="auto", **body).headers["x-pointsman-cost-usd"]) for _ in range(2)]
    first = logged(tmp_path / "requests.db")
    assert [r["cost_usd"] for r in first] == pytest.approx(costs, abs=1e-8)
    served, refused = 0, None
    with running(create_app(cfg)) as url, client_for(url, **headers) as client:
        report = httpx.get(f"{url}/v1/spend", params={"user": "ulla"},
                           headers={"authorization": "Bearer sk-admin-0123456789"}).json()
        assert to_nanos(report["spent_usd"]) == logged_nanos(first)
        while refused is None and served < 10:
            try:
                client.chat.completions.create(model="auto", **body)
                served += 1
            except openai.RateLimitError as exc:
                refused = exc
    actual = to_nanos(costs[0])
    fits = 0  # how many more fit after the first two, as one process would have counted
    while (2 + fits) * actual + reserve <= 4 * reserve:
        fits += 1
    assert served == fits and refused is not None and refused.code == "budget_exceeded"
    total = ledger_totals(cfg, "user:ulla")
    assert total.spent == logged_nanos(logged(tmp_path / "requests.db")) <= 4 * reserve


# -- 6. alerts through real traffic: one webhook POST per threshold per window --------------

def test_alert_webhook_once_per_threshold(stub: UpstreamStub, tmp_path: Path) -> None:
    stub.behave("*", tokens=20)
    body = ask("Which is the longest river in Europe?", max_tokens=20)
    spec = CATALOG.get("gpt-4o-mini")
    limit = 10 * spec.cost(prompt_estimate(body["messages"][0]["content"]), 20) * 1.2
    with webhook_receiver() as (hook, received):
        cfg = write_config(tmp_path, stub, sqlite_budgets(
            tmp_path, limits=[{"scope": "team", "limit_usd": limit}],
            alerts={"webhook_url": hook, "thresholds": [0.3, 0.6]}),
            candidates=["gpt-4o-mini"])
        spent = 0.0
        crossed: list[float] = []
        with running(create_app(cfg)) as url, client_for(url, **{
                "x-pointsman-team": "blue"}) as client:
            for _ in range(8):
                raw = client.chat.completions.with_raw_response.create(model="auto", **body)
                spent += float(raw.headers["x-pointsman-cost-usd"])
                crossed += [t for t in (0.3, 0.6) if t not in crossed and spent >= t * limit]
            deadline = time.monotonic() + 3
            while len(received) < len(crossed) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)  # a duplicate would arrive now
    assert crossed == [0.3, 0.6]
    assert [(b["budget"], b["threshold"]) for b in received] == [
        ("team:blue/day", 0.3), ("team:blue/day", 0.6)]
    for alert in received:
        assert alert["event"] == "budget.threshold"
        assert alert["limit_usd"] == pytest.approx(limit)
        assert alert["spent_usd"] >= alert["threshold"] * alert["limit_usd"]
        assert alert["resets_at"]


# -- 7. savings against always using the strongest candidate, per key and overall ----------

KEYS = [{"key": "sk-alice-0123456789", "name": "alice", "user": "alice"},
        {"key": "sk-bob-0123456789", "name": "bob", "user": "bob"},
        {"key": "sk-ops-0123456789", "name": "ops", "admin": True}]


def test_savings_per_key_and_overall_in_spend_api_and_cli(stub: UpstreamStub,
                                                         tmp_path: Path) -> None:
    cfg = write_config(tmp_path, stub, sqlite_budgets(tmp_path, limits=[
        {"scope": "key", "limit_usd": 10}]), candidates=MODELS, keys=KEYS)
    mine: dict[str, list[tuple[float, float]]] = {"alice": [], "bob": []}
    asks = {"alice": [("auto", "hi"), ("auto", "What is 2 + 2?"), ("gpt-4o-mini", "thanks")],
            "bob": [("gpt-4.1", "Write a haiku about the sea"), ("auto", "hello there")]}
    with running(create_app(cfg)) as url:
        for name, calls in asks.items():
            with client_for(url, key=f"sk-{name}-0123456789") as client:
                for model, text in calls:
                    answer = client.chat.completions.create(model=model, **ask(text))
                    mine[name].append((price(answer.model, answer.usage), max(
                        price(m, answer.usage) for m in MODELS)))  # the dearest candidate
        admin = {"authorization": "Bearer sk-ops-0123456789"}
        per_key = {k: httpx.get(f"{url}/v1/spend", params={"key": k}, headers=admin).json()
                   for k in mine}
        overall = httpx.get(f"{url}/v1/spend", headers=admin).json()
        denied = httpx.get(f"{url}/v1/spend", headers={
            "authorization": "Bearer sk-bob-0123456789"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    for name, pairs in mine.items():
        report = per_key[name]
        cost, baseline = sum(c for c, _ in pairs), sum(b for _, b in pairs)
        assert report["requests"] == len(pairs)
        assert report["spent_usd"] == pytest.approx(cost, abs=1e-9)  # from the ledger
        assert report["savings_usd"] == pytest.approx(baseline - cost, abs=1e-12)
        assert report["baseline_cost_usd"] == pytest.approx(baseline, abs=1e-12)
    assert per_key["alice"]["savings_usd"] > 0
    cost = sum(c for pairs in mine.values() for c, _ in pairs)
    baseline = sum(b for pairs in mine.values() for _, b in pairs)
    assert overall["savings_usd"] == pytest.approx(baseline - cost, abs=1e-12)
    assert overall["requests"] == 5
    result = CliRunner().invoke(cli_app, [
        "spend", "--key", "alice", "--json", "--config", str(tmp_path /
                                                             "pointsman-requests.db.yaml"),
        "--log", str(tmp_path / "requests.db")])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    assert cli["savings_usd"] == pytest.approx(per_key["alice"]["savings_usd"], abs=1e-12)
    assert cli["spent_usd"] == pytest.approx(per_key["alice"]["spent_usd"], abs=1e-12)


# -- 8. freemium: N premium requests a day, then cheap models only -------------------------

def test_freemium_premium_requests_then_cheap_only(stub: UpstreamStub, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, stub, sqlite_budgets(tmp_path, plans={"free": {
        "tiers": ["cheap", "premium"],
        "budgets": [{"scope": "user", "limit_requests": 3, "requests_tiers": ["premium"]}]}}),
        rules=[{"name": "free-tries-premium", "when": {"plan": ["free"]},
                "then": {"tier": "premium"}}])
    headers = {"x-pointsman-user": "fred", "x-pointsman-plan": "free"}
    served: list[tuple[str, str]] = []
    with running(create_app(cfg)) as url, client_for(url, **headers) as client:
        for _ in range(5):
            raw = client.chat.completions.with_raw_response.create(model="auto", **ask())
            served.append((raw.headers["x-pointsman-model"], raw.headers["x-pointsman-reason"]))
        with pytest.raises(openai.RateLimitError) as caught:  # premium asked for by name
            client.chat.completions.create(model="gpt-4.1", **ask())
    assert caught.value.code == "budget_exceeded"
    assert "budget user:fred/day (3 premium requests)" in caught.value.message
    assert "resets at" in caught.value.message
    tiers = [CATALOG.get(m).tier for m, _ in served]
    assert tiers == ["premium"] * 3 + ["cheap"] * 2
    assert all("0 premium requests left" in reason for _, reason in served[3:])
    assert ledger_totals(cfg, "user:fred").requests == 3  # cheap requests are not counted
