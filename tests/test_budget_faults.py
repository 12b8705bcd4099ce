"""The ledger under faults: reconciliation after an outage is single-flight and charges
once, settles are idempotent in every store, holds are leases (a dead process frees its
budget within one lease), store errors never escape a settle, and the exactness check:
many concurrent reservations, settles and releases with injected faults end with
spent = the sum of the settled costs to the nano-dollar and nothing held."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from budget_fakes import FaultyLedger
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, SpendLedger, Totals, hold_for, to_nanos
from pointsman.budget.redis_ledger import RedisLedger
from pointsman.budget.sqlite_ledger import SqliteLedger
from pointsman.config import load_config
from pointsman.errors import BudgetExceededError, StoreUnavailableError
from pointsman.router import resolve_catalog
from pointsman.types import RouteRequest
from redis_support import REDIS_URL, drop_prefix

TIERS = {m.name: m.tier for m in resolve_catalog(load_config())}
KINDS = ["memory", "sqlite", "redis"]


def budgets(**extra: Any) -> BudgetsConfig:
    data: dict[str, Any] = {"store": "memory", "alerts": {"thresholds": []},
                            "limits": [{"scope": "user", "window": "day", "limit_usd": 0.06}]}
    return BudgetsConfig.model_validate({**data, **extra})


def request(user: str = "alice") -> RouteRequest:
    return RouteRequest.from_prompt("hi", metadata={"user": user})


@asynccontextmanager
async def store(kind: str, tmp_path: Path) -> AsyncIterator[SpendLedger]:
    prefix = f"test:faults:{uuid.uuid4().hex}:"
    ledger: SpendLedger = (MemoryLedger() if kind == "memory" else
                           SqliteLedger(tmp_path / "spend.db") if kind == "sqlite" else
                           RedisLedger(REDIS_URL, prefix))
    try:
        yield ledger
    finally:
        await ledger.aclose()
        if kind == "redis":
            drop_prefix("{" + prefix + "}")


async def user_totals(guard: LedgerBudgetGuard, user: str = "alice") -> Totals:
    [applied] = guard.applicable(request(user))
    [total] = await guard.ledger.totals([applied.check.counters], guard.clock())
    return total


# -- 1. reconciliation after an outage ------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_reconciles_after_an_outage_charge_each_cost_once(
        kind: str, tmp_path: Path) -> None:
    """Two requests reconciling at once used to pop one list twice (IndexError → 500),
    losing or doubling a charge and leaking the second request's reservation."""
    async def scenario() -> None:
        async with store(kind, tmp_path) as inner:
            faulty = FaultyLedger(inner)
            guard = LedgerBudgetGuard(budgets(on_store_error="fail_open"), faulty, TIERS)
            served = await guard.reserve(request(), "gpt-4o-mini", 0.001)
            faulty.down = True
            unchecked = [await guard.reserve(request(), "gpt-4o-mini", 0.001)
                         for _ in range(3)]
            await guard.settle(served, 0.0011)  # fails: queued
            for reservation in unchecked:
                await guard.settle(reservation, 0.002)
            assert guard.unreconciled == 7  # 4 settles + 3 releases of reserves that failed
            faulty.down = False

            async def one() -> None:
                await guard.settle(await guard.reserve(request(), "gpt-4o-mini", 0.001),
                                   0.003)
            await asyncio.gather(one(), one(), one())
            await guard.reconcile()
            assert guard.unreconciled == 0
            total = await user_totals(guard)
            assert total == Totals(to_nanos(0.0011) + 3 * to_nanos(0.002)
                                   + 3 * to_nanos(0.003), 0, 0)
            await guard.aclose()
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_replayed_settle_charges_once_in_every_store(kind: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with store(kind, tmp_path) as ledger:
            guard = LedgerBudgetGuard(budgets(), ledger, TIERS)
            [applied] = guard.applicable(request())
            checks = [applied.check]
            now = time.time()
            assert await ledger.reserve("tok", checks, 500, now, 15) is None
            assert await ledger.reserve("tok", checks, 500, now, 15) is None  # retried
            assert await user_totals(guard) == Totals(0, 500, 0)
            for _ in range(3):  # a settle that timed out on the client, then two replays
                await ledger.settle("tok", hold_for(checks, 500), 400, now)
            await ledger.release("tok", hold_for(checks, 500), now)
            assert await user_totals(guard) == Totals(400, 0, 0)
    asyncio.run(scenario())


def test_a_settle_that_ran_but_failed_on_the_client_is_not_charged_twice(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        faulty = FaultyLedger(MemoryLedger())
        guard = LedgerBudgetGuard(budgets(on_store_error="fail_open"), faulty, TIERS)
        reservation = await guard.reserve(request(), "gpt-4o-mini", 0.001)
        faulty.fail_after_ops = {"settle"}  # the store charges it, the client sees a failure
        await guard.settle(reservation, 0.002)
        faulty.fail_after_ops = set()
        assert guard.unreconciled == 1 and await guard.reconcile() == 1
        assert await user_totals(guard) == Totals(to_nanos(0.002), 0, 0)
    asyncio.run(scenario())


def test_store_errors_never_escape_settle_or_release(tmp_path: Path) -> None:
    """An alert mark or a release failing after the work is done must not become a 500."""
    async def scenario() -> None:
        faulty = FaultyLedger(MemoryLedger())
        cfg = budgets(alerts={"thresholds": [0.01]})
        from pointsman.budget.alerts import Alerter
        guard = LedgerBudgetGuard(cfg, faulty, TIERS, alerter=Alerter(cfg.alerts, faulty))
        faulty.fail_ops = {"mark_alert"}
        await guard.settle(await guard.reserve(request(), "gpt-4o-mini", 0.01), 0.01)
        reservation = await guard.reserve(request(), "gpt-4o-mini", 0.001)
        faulty.fail_ops = {"release"}
        await guard.release(reservation)
        faulty.fail_ops = set()
        await guard.reconcile()
        assert await user_totals(guard) == Totals(to_nanos(0.01), 0, 0)
        await guard.aclose()
    asyncio.run(scenario())


# -- 3. leases ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_process_frees_its_holds_within_one_lease(kind: str, tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    cfg = budgets(lease_s=15)

    async def scenario() -> None:
        async with store(kind, tmp_path) as ledger:
            alive = LedgerBudgetGuard(cfg, ledger, TIERS, clock=lambda: now[0])
            doomed = LedgerBudgetGuard(cfg, ledger, TIERS, clock=lambda: now[0])
            await alive.reserve(request(), "gpt-4o-mini", 0.02)  # holds 0.024 of 0.06
            await doomed.reserve(request(), "gpt-4o-mini", 0.02)
            with pytest.raises(BudgetExceededError):
                await alive.reserve(request(), "gpt-4o-mini", 0.02)
            for _ in range(3):  # 27 s, well past one lease: both renew every 9 s
                now[0] += 9
                assert await alive.leases.renew() == 1 and await doomed.leases.renew() == 1
            assert (await user_totals(alive)).held == to_nanos(0.048)
            await doomed.leases.aclose()  # the process dies: no more renewals
            now[0] += 9
            assert await alive.leases.renew() == 1
            now[0] += 9  # 18 s after doomed's last renewal: its lease ran out
            assert (await user_totals(alive)).held == to_nanos(0.024)
            await alive.reserve(request(), "gpt-4o-mini", 0.02)
            await alive.aclose()
    asyncio.run(scenario())


def test_a_hold_is_renewed_for_at_most_hold_ttl(tmp_path: Path) -> None:
    now = [1_900_000_000.0]

    async def scenario() -> None:
        guard = LedgerBudgetGuard(budgets(lease_s=10, hold_ttl_s=25), MemoryLedger(), TIERS,
                                  clock=lambda: now[0])
        await guard.reserve(request(), "gpt-4o-mini", 0.02)
        now[0] += 8
        assert await guard.leases.renew() == 1
        now[0] += 16
        assert await guard.leases.renew() == 1
        now[0] += 8  # 32 s old: past hold_ttl_s, not renewed, lapses at 34 s
        assert await guard.leases.renew() == 0
        now[0] += 3
        assert (await user_totals(guard)).held == 0
        await guard.aclose()
    asyncio.run(scenario())


# -- exactness under injected faults ---------------------------------------------------------

async def _one_request(guard: LedgerBudgetGuard, rng: random.Random,
                       settled: list[int]) -> None:
    user = rng.choice(["alice", "bob", "carol"])
    cost = rng.randrange(1, 2_000_000) / 1e9
    try:
        reservation = await guard.reserve(request(user), "gpt-4o-mini", 0.0005)
    except (BudgetExceededError, StoreUnavailableError):
        return
    await asyncio.sleep(0)
    if rng.random() < 0.25:
        await guard.release(reservation)  # the upstream call failed
        return
    await guard.settle(reservation, cost)
    settled.append(to_nanos(cost))


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
@pytest.mark.parametrize("kind", KINDS)
def test_ledger_equals_the_settled_costs_after_faults(kind: str, mode: str,
                                                      tmp_path: Path) -> None:
    async def scenario() -> None:
        async with store(kind, tmp_path) as inner:
            faulty = FaultyLedger(inner, random.Random(7), rate=0.3)
            cfg = budgets(on_store_error=mode, limits=[
                {"scope": "user", "limit_usd": 1.0}, {"scope": "global", "limit_usd": 10.0}])
            guards = [LedgerBudgetGuard(cfg, faulty, TIERS) for _ in range(3)]
            rng = random.Random(11)
            settled: list[int] = []
            await asyncio.gather(*(_one_request(guards[i % 3], rng, settled)
                                   for i in range(240)))
            faulty.rate = 0.0
            for guard in guards:
                await guard.reconcile()
                assert guard.unreconciled == 0
            [applied] = [a for a in guards[0].applicable(request()) if a.limit.scope == "global"]
            [total] = await inner.totals([applied.check.counters], time.time())
            assert total.held == 0
            assert total.spent == sum(settled)
            assert 100 < len(settled) < 240  # faults did refuse or drop some
            for guard in guards:
                await guard.aclose()
    asyncio.run(scenario())
