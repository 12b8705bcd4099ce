"""Cost-aware routing: plans, the step-down near the cap, and the refusal at the cap,
through Router.decide with the budget guard as the live-state source."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from pointsman import LiveState, Router, RouteRequest, load_config
from pointsman.budget.factory import build_guard
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger
from pointsman.errors import BudgetExceededError, ConfigError, PermissionDeniedError
from pointsman.types import Decision

HARD = ("Prove that every finite integral domain is a field, step by step, then implement a "
        "Python function that checks the theorem for Z/pZ and analyze its time complexity.")

BUDGETS: dict[str, Any] = {
    "store": "memory",
    "timezone": "Europe/Paris",
    "alerts": {"thresholds": []},
    "plans": {
        "free": {"tiers": ["local", "cheap"],
                 "budgets": [{"scope": "user", "window": "day", "limit_usd": 0.5}]},
        "pro": {"budgets": [{"scope": "user", "window": "day", "limit_usd": 5.0}]},
    },
    "members": {"user:alice": "pro", "user:fred": "free"},
}


@pytest.fixture()
def router(tmp_path: Path) -> Router:
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump({"budgets": BUDGETS}))
    return Router(load_config(path))


def route_with_spend(router: Router, user: str, spent: float,
                     prompt: str = HARD) -> tuple[Decision, LedgerBudgetGuard]:
    guard = build_guard(router.config.budgets, router.catalog, MemoryLedger())
    request = RouteRequest.from_prompt(prompt, max_output_tokens=2000, metadata={"user": user})

    async def scenario() -> Decision:
        if spent:
            await guard.settle(await guard.reserve(request, "gpt-4o-mini", 0.0), spent)
        state = await guard.contribute(request, LiveState())
        return router.decide(request, state)
    return asyncio.run(scenario()), guard


def test_pro_user_near_the_cap_is_stepped_down_to_a_model_that_fits(router: Router) -> None:
    fresh, _ = route_with_spend(router, "alice", 0.0)
    assert router.catalog.get(fresh.model).tier == "premium"
    assert fresh.estimated_cost_usd == pytest.approx(0.03, abs=0.001)
    decision, _ = route_with_spend(router, "alice", 4.85)
    chosen = router.catalog.get(decision.model)
    assert chosen.tier in ("cheap", "local")
    margin = router.config.budgets.cost_margin
    assert decision.estimated_cost_usd * margin <= 0.15
    assert "budget user:alice/day" in decision.reason and "97%" in decision.reason
    assert "stepped down to tier cheap" in decision.filtered_out[fresh.model]


def test_at_eighty_percent_routing_stops_at_mid(router: Router) -> None:
    decision, _ = route_with_spend(router, "alice", 4.1)
    tiers = {router.catalog.get(c.model).tier for c in decision.candidates}
    assert "premium" not in tiers and "mid" in tiers
    assert router.catalog.get(decision.model).tier in ("mid", "cheap")
    premium = [s.name for s in router.candidates if s.tier == "premium"]
    assert all("82%: stepped down to tier mid" in decision.filtered_out[m] for m in premium)


def test_at_the_cap_routing_refuses_naming_the_budget_and_reset(router: Router) -> None:
    with pytest.raises(BudgetExceededError) as info:
        route_with_spend(router, "alice", 5.0)
    assert info.value.budget == "user:alice/day"
    assert info.value.status == 429
    assert info.value.resets_at is not None and info.value.resets_at.endswith("+01:00")
    assert info.value.resets_at[11:19] == "00:00:00"


def test_free_plan_only_reaches_its_tiers(router: Router) -> None:
    decision, _ = route_with_spend(router, "fred", 0.0)
    assert router.catalog.get(decision.model).tier == "cheap"
    assert "not in plan 'free'" in " ".join(decision.filtered_out.values())


def test_a_model_outside_the_plan_is_refused_at_reservation(router: Router) -> None:
    guard = build_guard(router.config.budgets, router.catalog, MemoryLedger())
    request = RouteRequest.from_prompt("hi", metadata={"user": "fred"})
    with pytest.raises(PermissionDeniedError, match="plan 'free'"):
        asyncio.run(guard.reserve(request, "claude-opus-4-5", 0.01))
    plan_header = RouteRequest.from_prompt("hi", metadata={"user": "zoe", "plan": "free"})
    with pytest.raises(PermissionDeniedError):
        asyncio.run(guard.reserve(plan_header, "gpt-4.1", 0.01))
    asyncio.run(guard.reserve(plan_header, "gpt-4o-mini", 0.001))


def test_freemium_premium_requests_then_cheap_only(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump({"budgets": {**BUDGETS, "limits": [
        {"scope": "user", "window": "day", "limit_requests": 1,
         "requests_tiers": ["premium"]}]}}))
    router = Router(load_config(path))
    guard = build_guard(router.config.budgets, router.catalog, MemoryLedger())
    request = RouteRequest.from_prompt(HARD, metadata={"user": "zed"})

    async def two() -> list[Decision]:
        out = []
        for _ in range(2):
            decision = router.decide(request, await guard.contribute(request, LiveState()))
            reservation = await guard.reserve(request, decision.model, 0.01)
            await guard.settle(reservation, 0.01)
            out.append(decision)
        return out
    first, second = asyncio.run(two())
    assert router.catalog.get(first.model).tier == "premium"
    assert router.catalog.get(second.model).tier != "premium"
    assert "0 premium requests left" in second.reason


def test_402_can_be_configured(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"budgets": {**BUDGETS, "exceeded_status": 402}}))
    router = Router(load_config(path))
    with pytest.raises(BudgetExceededError) as info:
        route_with_spend(router, "alice", 5.0)
    assert info.value.status == 402


@pytest.mark.parametrize("bad", [
    {"timezone": "Mars/Olympus"},
    {"members": {"user:x": "gold"}},
    {"limits": [{"scope": "user", "window": "rolling", "limit_usd": 1}]},
    {"limits": [{"scope": "user", "window": "day"}]},
    {"downgrade": [{"at": 0.8, "max_tier": "platinum"}]},
    {"surprise": True},
])
def test_bad_budget_config_is_refused(tmp_path: Path, bad: dict[str, Any]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"budgets": {**BUDGETS, **bad}}))
    with pytest.raises(ConfigError, match="budgets"):
        load_config(path)
