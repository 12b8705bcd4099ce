"""Redis stopped mid-test (our own redis-server on a free loopback port, never the shared
one): fail-closed gives StoreUnavailableError (503) fast, fail-open serves and reconciles
the spend when Redis is back."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pointsman import LiveState, RouteRequest, load_config
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.redis_ledger import RedisLedger
from pointsman.errors import StoreUnavailableError, http_status
from pointsman.router import resolve_catalog
from redis_support import RedisProcess, free_port

TIERS = {m.name: m.tier for m in resolve_catalog(load_config())}
REQUEST = RouteRequest.from_prompt("hi", metadata={"user": "alice"})


@pytest.fixture()
def redis_proc() -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    proc = RedisProcess(free_port())
    proc.start()
    yield proc
    proc.stop()


def make_guard(port: int, mode: str) -> LedgerBudgetGuard:
    data: dict[str, Any] = {"store": "redis", "on_store_error": mode, "socket_timeout_s": 0.2,
                            "alerts": {"thresholds": []},
                            "limits": [{"scope": "user", "window": "day", "limit_usd": 1.0}]}
    cfg = BudgetsConfig.model_validate(data)
    ledger = RedisLedger(f"redis://127.0.0.1:{port}/0", "t:", cfg.socket_timeout_s or 0.2)
    return LedgerBudgetGuard(cfg, ledger, TIERS)


async def timed(coro: Any) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        result = await coro
    except StoreUnavailableError as exc:
        result = exc
    return result, time.monotonic() - start


def test_fail_closed_refuses_quickly_with_503(redis_proc: RedisProcess) -> None:
    async def scenario() -> None:
        guard = make_guard(redis_proc.port, "fail_closed")
        await guard.settle(await guard.reserve(REQUEST, "gpt-4o-mini", 0.1), 0.1)
        redis_proc.stop()
        error, took = await timed(guard.reserve(REQUEST, "gpt-4o-mini", 0.1))
        assert isinstance(error, StoreUnavailableError) and http_status(error) == 503
        assert took < 1.0
        error, took = await timed(guard.contribute(REQUEST, LiveState()))
        assert isinstance(error, StoreUnavailableError) and took < 1.0
        await guard.aclose()
    asyncio.run(scenario())


def test_fail_open_serves_then_reconciles_when_redis_returns(
        redis_proc: RedisProcess) -> None:
    async def scenario() -> None:
        guard = make_guard(redis_proc.port, "fail_open")
        await guard.settle(await guard.reserve(REQUEST, "gpt-4o-mini", 0.1), 0.1)
        redis_proc.stop()
        reservation, took = await timed(guard.reserve(REQUEST, "gpt-4o-mini", 0.2))
        assert took < 1.0 and reservation.token.startswith("unchecked:")
        state, took = await timed(guard.contribute(REQUEST, LiveState()))
        assert state.budget is None and took < 1.0
        await guard.settle(reservation, 0.25)
        assert guard.unreconciled == 2  # the charge, and a release of the failed reserve
        redis_proc.start()  # an empty Redis (no persistence): only reconciled spend shows
        await guard.settle(await guard.reserve(REQUEST, "gpt-4o-mini", 0.1), 0.05)
        assert guard.unreconciled == 0
        view = (await guard.contribute(REQUEST, LiveState())).budget
        assert view is not None and view.spent_usd == pytest.approx(0.30)
        await guard.aclose()
    asyncio.run(scenario())
