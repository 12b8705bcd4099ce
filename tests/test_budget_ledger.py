"""Spend ledgers through the budget guard: no overspend under concurrency (memory, SQLite,
real Redis), exact ledger = logged costs, restart, hold expiry, request limits."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, SpendLedger, to_nanos
from pointsman.budget.redis_ledger import RedisLedger
from pointsman.budget.sqlite_ledger import SqliteLedger
from pointsman.config import load_config
from pointsman.errors import BudgetExceededError
from pointsman.requestlog import RequestRecord
from pointsman.router import resolve_catalog
from pointsman.stores.requestlog_sqlite import SqliteRequestLog
from pointsman.types import LiveState, RouteRequest
from redis_support import drop_prefix, redis_ledger

TIERS = {m.name: m.tier for m in resolve_catalog(load_config())}
ESTIMATE = 0.001
LIMIT = 0.06  # with the 1.2 margin: 50 holds of $0.0012


def budgets(**extra: Any) -> BudgetsConfig:
    data: dict[str, Any] = {"store": "memory", "alerts": {"thresholds": []},
                            "limits": [{"scope": "user", "window": "day", "limit_usd": LIMIT}]}
    return BudgetsConfig.model_validate({**data, **extra})


def make_ledger(kind: str, tmp_path: Path) -> SpendLedger:
    if kind == "memory":
        return MemoryLedger()
    if kind == "sqlite":
        return SqliteLedger(tmp_path / "spend.db")
    return redis_ledger(f"test:budget:{uuid.uuid4().hex}:")


@asynccontextmanager
async def guard_for(kind: str, tmp_path: Path, cfg: BudgetsConfig | None = None,
                    clock: Callable[[], float] | None = None
                    ) -> AsyncIterator[LedgerBudgetGuard]:
    guard = LedgerBudgetGuard(cfg or budgets(), make_ledger(kind, tmp_path), TIERS,
                              clock=clock or time.time)
    try:
        yield guard
    finally:
        await guard.aclose()
        if isinstance(guard.ledger, RedisLedger):
            drop_prefix(guard.ledger.prefix)




def request(user: str = "alice", **meta: Any) -> RouteRequest:
    return RouteRequest.from_prompt("hello", metadata={"user": user, **meta})


async def one_call(guard: LedgerBudgetGuard, log: SqliteRequestLog, rng: random.Random
                   ) -> bool:
    try:
        reservation = await guard.reserve(request(), "gpt-4o-mini", ESTIMATE)
    except BudgetExceededError:
        return False
    await asyncio.sleep(rng.random() * 0.01)
    actual = round(ESTIMATE * rng.uniform(0.7, 1.15), 9)
    await guard.settle(reservation, actual)
    await log.write(RequestRecord(
        id=uuid.uuid4().hex, ts=0.0, key=None, user="alice", team=None, session=None,
        requested_model="auto", decision={}, models_tried=["gpt-4o-mini"], outcome="ok",
        error=None, model="gpt-4o-mini", prompt_tokens=1, completion_tokens=1,
        cost_usd=actual, baseline_cost_usd=actual, ttft_ms=None, total_ms=1.0))
    return True


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_200_concurrent_reservations_never_overspend(kind: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        log = SqliteRequestLog(tmp_path / "requests.db")
        rng = random.Random(7)
        async with guard_for(kind, tmp_path) as guard:
            served = await asyncio.gather(*(one_call(guard, log, rng) for _ in range(200)))
            await log.flush()
            applied = guard.applicable(request())
            [total] = await guard.ledger.totals([applied[0].check.counters], guard.clock())
        records = await log.records()
        await log.aclose()
        logged = sum(to_nanos(r.cost_usd) for r in records)
        assert sum(served) == len(records)
        assert 50 <= len(records) < 200
        assert total.spent == logged  # exact, in nano-dollars
        assert total.held == 0
        max_error = to_nanos(ESTIMATE * 0.15)
        assert total.spent <= to_nanos(LIMIT) + max_error
    asyncio.run(scenario())


def test_sqlite_spend_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with guard_for("sqlite", tmp_path) as guard:
            reservation = await guard.reserve(request(), "gpt-4o-mini", 0.02)
            await guard.settle(reservation, 0.025)
        async with guard_for("sqlite", tmp_path) as again:
            view = (await again.contribute(request(), _empty())).budget
            assert view is not None
            assert view.spent_usd == pytest.approx(0.025)
            await again.reserve(request(), "gpt-4o-mini", 0.02)
            with pytest.raises(BudgetExceededError) as info:
                await again.reserve(request(), "gpt-4o-mini", 0.01)
            assert info.value.budget == "user:alice/day"
            assert info.value.resets_at is not None
            assert info.value.resets_at in info.value.message
    asyncio.run(scenario())


def _empty() -> LiveState:
    return LiveState()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_unsettled_hold_expires_and_late_settle_still_counts(kind: str, tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    cfg = budgets(lease_s=5)

    async def scenario() -> None:
        async with guard_for(kind, tmp_path, cfg, clock=lambda: now[0]) as guard:
            first = await guard.reserve(request(), "gpt-4o-mini", 0.04)  # holds 0.048
            with pytest.raises(BudgetExceededError):
                await guard.reserve(request(), "gpt-4o-mini", 0.04)
            now[0] += 6  # the first hold expires unsettled
            second = await guard.reserve(request(), "gpt-4o-mini", 0.04)
            await guard.release(second)
            await guard.settle(first, 0.03)  # arrives late: still recorded
            view = (await guard.contribute(request(), _empty())).budget
            assert view is not None
            assert view.spent_usd == pytest.approx(0.03)
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_request_limit_counts_premium_only_and_release_returns_it(
        kind: str, tmp_path: Path) -> None:
    cfg = budgets(limits=[{"scope": "user", "window": "day", "limit_requests": 2,
                           "requests_tiers": ["premium"]}])

    async def scenario() -> None:
        async with guard_for(kind, tmp_path, cfg) as guard:
            for _ in range(5):
                await guard.settle(await guard.reserve(request(), "gpt-4o-mini", 0.001), 0.001)
            first = await guard.reserve(request(), "gpt-4.1", 0.01)
            await guard.release(first)
            for _ in range(2):
                await guard.settle(await guard.reserve(request(), "gpt-4.1", 0.01), 0.01)
            with pytest.raises(BudgetExceededError, match="premium requests"):
                await guard.reserve(request(), "gpt-4.1", 0.01)
            view = (await guard.contribute(request(), _empty())).budget
            assert view is not None and view.premium_requests_left == 0
            await guard.reserve(request(), "gpt-4o-mini", 0.001)  # cheap models still serve
    asyncio.run(scenario())


def test_budgets_of_other_users_are_separate(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with guard_for("memory", tmp_path) as guard:
            await guard.settle(await guard.reserve(request("bob"), "gpt-4o-mini", 0.04), 0.05)
            await guard.reserve(request("alice"), "gpt-4o-mini", 0.04)
            with pytest.raises(BudgetExceededError, match="user:bob/day"):
                await guard.reserve(request("bob"), "gpt-4o-mini", 0.01)
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_rolling_window_frees_spend_after_its_seconds(kind: str, tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    cfg = budgets(limits=[{"scope": "key", "window": "rolling", "seconds": 60,
                           "limit_usd": 0.05}])
    req = RouteRequest.from_prompt("hi", metadata={"key": "k1"})

    async def scenario() -> None:
        async with guard_for(kind, tmp_path, cfg, clock=lambda: now[0]) as guard:
            await guard.settle(await guard.reserve(req, "gpt-4o-mini", 0.03), 0.04)
            now[0] += 30
            with pytest.raises(BudgetExceededError, match="key:k1/rolling-60s"):
                await guard.reserve(req, "gpt-4o-mini", 0.01)
            now[0] += 31
            await guard.reserve(req, "gpt-4o-mini", 0.03)
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_replicas_sharing_one_store_never_overspend(kind: str, tmp_path: Path) -> None:
    prefix = f"test:budget:{uuid.uuid4().hex}:"

    def ledger() -> SpendLedger:
        if kind == "sqlite":
            return SqliteLedger(tmp_path / "shared.db")
        return redis_ledger(prefix)

    async def scenario() -> None:
        log = SqliteRequestLog(tmp_path / "requests.db")
        rng = random.Random(11)
        guards = [LedgerBudgetGuard(budgets(), ledger(), TIERS) for _ in range(2)]
        served = await asyncio.gather(*(one_call(guards[i % 2], log, rng)
                                        for i in range(200)))
        applied = guards[1].applicable(request())
        [total] = await guards[1].ledger.totals([applied[0].check.counters], time.time())
        await log.aclose()
        reader = SqliteRequestLog(tmp_path / "requests.db")
        logged = sum(to_nanos(r.cost_usd) for r in await reader.records())
        await reader.aclose()
        for guard in guards:
            await guard.aclose()
        assert 50 <= sum(served) < 200
        assert total.spent == logged and total.held == 0
        assert total.spent <= to_nanos(LIMIT) + to_nanos(ESTIMATE * 0.15)
    try:
        asyncio.run(scenario())
    finally:
        drop_prefix(prefix)
