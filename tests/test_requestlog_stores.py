"""Request log stores (SQLite, PostgreSQL): writes return at once, aclose drains everything,
migrations are idempotent, spend and savings queries by key / user / team / model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from pointsman.requestlog import RequestLog, RequestRecord
from pointsman.stores.requestlog_postgres import PostgresRequestLog
from pointsman.stores.requestlog_sqlite import SqliteRequestLog

DSN = "postgresql://postgres@127.0.0.1:5432/test"
Opener = Callable[[], Awaitable[SqliteRequestLog | PostgresRequestLog]]


def record(i: int, ts: float) -> RequestRecord:
    model = ["gpt-4o-mini", "gpt-4.1", "claude-haiku-4-5"][i % 3]
    cost = [0.001, 0.01, 0.004][i % 3]
    return RequestRecord(
        id=f"r{i}", ts=ts, key=f"k{i % 2}", user=f"u{i % 4}", team="core", session=None,
        requested_model="auto", decision={"reason": "test", "scores": {"x": 1.0}},
        models_tried=[model], outcome="ok", error=None, model=model, prompt_tokens=10 + i,
        completion_tokens=20, cost_usd=cost, baseline_cost_usd=0.02, ttft_ms=12.5,
        total_ms=40.0, stream=i % 2 == 0, messages=[{"role": "user", "content": "héllo"}])


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    if request.param == "sqlite":
        async def open_sqlite() -> SqliteRequestLog:
            return SqliteRequestLog(tmp_path / "requests.db", batch_size=16)
        yield open_sqlite
        return
    schema = f"test_rl_{uuid.uuid4().hex[:12]}"

    async def open_pg() -> PostgresRequestLog:
        return await PostgresRequestLog.open(DSN, schema, batch_size=16)
    yield open_pg
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_nothing_accepted_is_lost_and_queries_add_up(opener: Opener) -> None:
    log = await opener()
    assert isinstance(log, RequestLog)
    records = [record(i, 1000.0 + i) for i in range(300)]
    for r in records:
        await log.write(r)  # returns at once: the drain task writes in batches
    await log.aclose()      # no flush first: aclose must drain everything
    again = await opener()  # reopening re-runs migrations: a no-op
    stored = await again.records()
    assert [r.id for r in stored] == [r.id for r in records]
    assert stored[5] == records[5]
    summary = await again.spend_summary("key", "k1", 1000.0, 1300.0, top=2)
    expected = [r for r in records if r.key == "k1"]
    assert summary.requests == len(expected)
    assert summary.cost_usd == pytest.approx(sum(r.cost_usd for r in expected))
    assert summary.savings_usd == pytest.approx(sum(0.02 - r.cost_usd for r in expected))
    assert [m.model for m in summary.by_model] == ["gpt-4.1", "claude-haiku-4-5"]
    window = await again.spend_summary(None, None, 1100.0, 1200.0)
    assert window.requests == 100
    assert (await again.spend_summary("team", "nobody", 0.0, 2000.0)).requests == 0
    await again.aclose()


@pytest.mark.anyio
async def test_flush_makes_writes_visible_while_open(opener: Opener) -> None:
    log = await opener()
    await asyncio.gather(*(log.write(record(i, 5.0)) for i in range(40)))
    await log.flush()
    assert len(await log.records()) == 40
    assert (await log.spend_summary("user", "u0", 0.0, 10.0)).requests == 10
    await log.aclose()
