"""Request log stores (SQLite, PostgreSQL): writes return at once, aclose drains everything,
migrations are idempotent, spend and savings queries by key / user / team / model, the
front door is kept, and a database from before the door column upgrades in place."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.requestlog import RequestLog, RequestRecord
from pointsman.stores.requestlog_postgres import MIGRATIONS as PG_MIGRATIONS
from pointsman.stores.requestlog_postgres import PostgresRequestLog
from pointsman.stores.requestlog_postgres import migrate as pg_migrate
from pointsman.stores.requestlog_sqlite import COLUMNS, SqliteRequestLog, row_of
from pointsman.stores.requestlog_sqlite import MIGRATIONS as SQLITE_MIGRATIONS

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


LATER = ("door", "cached_tokens", "cache_creation_tokens", "reasoning_tokens",  # migrations 2, 4
         "experiment", "arm")  # migration 6
LATER_FIELDS = (*LATER, "prompt_hash")  # record fields the code before migration 2 lacked


class V1Database:
    """A request log database as the code before migration 2 left it: only migration 1
    applied, rows without the later columns (``door``, the cache and reasoning token
    counts) and records without those fields."""

    OLD_COLUMNS = tuple(c for c in COLUMNS if c not in LATER)

    @staticmethod
    def old_row(r: RequestRecord) -> tuple[Any, ...]:
        data = json.loads(r.to_json())
        for name in LATER_FIELDS:
            del data[name]
        values = dict(zip(COLUMNS, row_of(r), strict=True))
        return (*(values[c] for c in V1Database.OLD_COLUMNS[:-1]), json.dumps(data))


class SqliteBackend(V1Database):
    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self) -> SqliteRequestLog:
        return SqliteRequestLog(self.path, batch_size=16)

    async def seed_v1(self, records: list[RequestRecord]) -> None:
        conn = connect(self.path)
        migrate(conn, SQLITE_MIGRATIONS[:1])
        marks = ", ".join("?" for _ in self.OLD_COLUMNS)
        conn.executemany(f"INSERT INTO requests ({', '.join(self.OLD_COLUMNS)}) "
                         f"VALUES ({marks})", [self.old_row(r) for r in records])
        conn.close()

    async def doors(self) -> dict[str, int]:
        conn = sqlite3.connect(self.path)
        try:
            rows = conn.execute("SELECT door, COUNT(*) FROM requests GROUP BY door").fetchall()
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(SQLITE_MIGRATIONS)
        finally:
            conn.close()
        return dict(rows)


class PostgresBackend(V1Database):
    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def open(self) -> PostgresRequestLog:
        return await PostgresRequestLog.open(DSN, self.schema, batch_size=16)

    async def seed_v1(self, records: list[RequestRecord]) -> None:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await pg_migrate(conn, self.schema, PG_MIGRATIONS[:1])
            cols = ", ".join(f'"{c}"' for c in self.OLD_COLUMNS)
            marks = ", ".join("%s" for _ in self.OLD_COLUMNS)
            async with conn.cursor() as cur:
                await cur.executemany(
                    f'INSERT INTO "{self.schema}".requests ({cols}) VALUES ({marks})',
                    [self.old_row(r) for r in records])

    async def doors(self) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            cur = await conn.execute(
                f'SELECT door, COUNT(*) FROM "{self.schema}".requests GROUP BY door')
            rows = await cur.fetchall()
            cur = await conn.execute(f'SELECT MAX(number) FROM "{self.schema}".migrations')
            assert await cur.fetchone() == (len(PG_MIGRATIONS),)
        return {door: int(n) for door, n in rows}


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest,
                  tmp_path: Path) -> AsyncIterator[SqliteBackend | PostgresBackend]:
    if request.param == "sqlite":
        yield SqliteBackend(tmp_path / "requests.db")
        return
    schema = f"test_rl_{uuid.uuid4().hex[:12]}"
    yield PostgresBackend(schema)
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.anyio
async def test_door_round_trips_in_column_and_record(
        backend: SqliteBackend | PostgresBackend) -> None:
    log = await backend.open()
    doors = ["chat", "messages", "responses"]
    records = [replace(record(i, 10.0 + i), door=doors[i % 3]) for i in range(9)]
    for r in records:
        await log.write(r)
    await log.aclose()
    again = await backend.open()
    assert await again.records() == records
    await again.aclose()
    assert await backend.doors() == {"chat": 3, "messages": 3, "responses": 3}


@pytest.mark.anyio
async def test_a_migration_1_database_upgrades_on_open_and_keeps_its_rows(
        backend: SqliteBackend | PostgresBackend) -> None:
    old = [record(i, 100.0 + i) for i in range(20)]
    await backend.seed_v1(old)
    log = await backend.open()  # applies the migrations after 1 in place
    await log.write(replace(record(20, 200.0), door="messages"))
    await log.flush()
    stored = await log.records()
    assert stored[:20] == old  # the old records read back, as door "chat"
    assert [r.door for r in stored] == ["chat"] * 20 + ["messages"]
    assert (await log.spend_summary("key", "k0", 0.0, 1000.0)).requests == 11
    await log.aclose()
    assert await backend.doors() == {"chat": 20, "messages": 1}
    reopened = await backend.open()  # and opening the upgraded database again is a no-op
    assert len(await reopened.records()) == 21
    await reopened.aclose()


def test_record_json_is_every_field_in_order() -> None:
    """``to_json`` (orjson writing the dataclass) is the fields, in declaration order, as
    a dict of them would be written; mappings and sequences of other types as objects and
    arrays."""
    from dataclasses import fields
    from types import MappingProxyType

    r = replace(record(1, 5.0), decision=MappingProxyType({"reason": "x"}),
                models_tried=("a", "b"), prompt_hash="ab", experiment="e", arm="1")
    data = json.loads(r.to_json())
    assert list(data) == [f.name for f in fields(RequestRecord)]
    assert data == {**{f.name: getattr(r, f.name) for f in fields(RequestRecord)},
                    "decision": {"reason": "x"}, "models_tried": ["a", "b"]}
    assert RequestRecord.from_mapping(data).decision == {"reason": "x"}


@pytest.mark.anyio
async def test_subject_indexes_skip_rows_without_the_subject_and_still_serve_queries(
        tmp_path: Path) -> None:
    """Migration 8: the key, user, team and experiment indexes are partial (a row without
    the subject costs them nothing), and a query naming a subject still searches them."""
    log = SqliteRequestLog(tmp_path / "requests.db", batch_size=16)
    anonymous = replace(record(0, 10.0), id="anon", key=None, user=None, team=None)
    for r in (anonymous, record(1, 11.0), replace(record(2, 12.0), experiment="e", arm="a")):
        await log.write(r)
    await log.aclose()
    conn = sqlite3.connect(tmp_path / "requests.db")
    try:
        for column in ("key", "user", "team", "experiment"):
            index = f"requests_{column}_ts"
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (index,)).fetchone()[0]
            assert f"WHERE {column} IS NOT NULL" in sql
            plan = " ".join(str(row) for row in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT COUNT(*), SUM(cost_usd) FROM requests "
                f"WHERE ts >= ? AND ts < ? AND {column} = ?", (0.0, 99.0, "x")))
            assert index in plan, plan
        assert conn.execute("SELECT COUNT(*) FROM requests WHERE user = 'u1'").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone() == (3,)
    finally:
        conn.close()
