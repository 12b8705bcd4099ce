"""Budget guard throughput: reserve + settle pairs per second per ledger, and the request
log's write throughput. Prints figures; run: .venv/bin/python benchmarks/bench_budget.py"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from pointsman import RouteRequest, load_config
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, SpendLedger
from pointsman.budget.redis_ledger import RedisLedger
from pointsman.budget.sqlite_ledger import SqliteLedger
from pointsman.requestlog import RequestRecord
from pointsman.router import resolve_catalog
from pointsman.stores.requestlog_sqlite import SqliteRequestLog

N = 2000
CONCURRENCY = 16


async def guard_rate(ledger: SpendLedger) -> float:
    cfg = BudgetsConfig.model_validate({"alerts": {"thresholds": []}, "limits": [
        {"scope": "user", "window": "day", "limit_usd": 1e6},
        {"scope": "key", "window": "rolling", "seconds": 3600, "limit_usd": 1e6}]})
    tiers = {m.name: m.tier for m in resolve_catalog(load_config())}
    guard = LedgerBudgetGuard(cfg, ledger, tiers)
    request = RouteRequest.from_prompt("x", metadata={"user": "u", "key": "k"})

    async def worker() -> None:
        for _ in range(N // CONCURRENCY):
            await guard.settle(await guard.reserve(request, "gpt-4o-mini", 0.001), 0.001)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    took = time.perf_counter() - start
    await guard.aclose()
    return N / took


async def log_rate(path: Path) -> tuple[float, float]:
    log = SqliteRequestLog(path)
    start = time.perf_counter()
    for i in range(20_000):
        await log.write(RequestRecord(
            id=str(i), ts=time.time(), key="k", user="u", team=None, session=None,
            requested_model="auto", decision={"reason": "x"}, models_tried=["m"], outcome="ok",
            error=None, model="m", prompt_tokens=1, completion_tokens=1, cost_usd=0.001,
            baseline_cost_usd=0.002, ttft_ms=1.0, total_ms=2.0))
    enqueue = time.perf_counter() - start
    await log.aclose()
    return 20_000 / enqueue, 20_000 / (time.perf_counter() - start)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"reserve+settle pairs/s (2 budgets, concurrency {CONCURRENCY}, N={N}):")
        print(f"  memory  {await guard_rate(MemoryLedger()):10.0f}")
        print(f"  sqlite  {await guard_rate(SqliteLedger(Path(tmp) / 's.db')):10.0f}")
        redis = RedisLedger("redis://127.0.0.1:6379/0", f"bench:{uuid.uuid4().hex}:")
        print(f"  redis   {await guard_rate(redis):10.0f}")
        cleanup = Redis()  # this run's keys only, under its own prefix
        keys = [k async for k in cleanup.scan_iter(match=f"{redis.prefix}*")]
        if keys:
            await cleanup.delete(*keys)
        await cleanup.aclose()
        enqueue, written = await log_rate(Path(tmp) / "r.db")
        print(f"request log (SQLite): enqueue {enqueue:,.0f}/s, written {written:,.0f}/s")


if __name__ == "__main__":
    asyncio.run(main())
