"""The request log in PostgreSQL (psycopg 3, async): numbered migrations in a schema of its
own, batched inserts (``executemany``) from the background drain task. The migrations are
the schema's: the stored responses (:mod:`pointsman.stores.responses_postgres`) live in the
same schema and apply the same tuple through :func:`migrate`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pointsman.budget.spend import TOKEN_SUMS, ModelSpend, Scope, SpendSummary, TokenTotals
from pointsman.errors import StoreUnavailableError
from pointsman.requestlog import RequestRecord
from pointsman.stores.requestlog_batch import BatchingRequestLog
from pointsman.stores.requestlog_sqlite import COLUMNS, row_of

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE {schema}.requests (
         id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, key TEXT, "user" TEXT, team TEXT,
         session TEXT, requested_model TEXT NOT NULL, model TEXT, outcome TEXT NOT NULL,
         error TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
         cost_usd DOUBLE PRECISION NOT NULL, baseline_cost_usd DOUBLE PRECISION NOT NULL,
         ttft_ms DOUBLE PRECISION, total_ms DOUBLE PRECISION NOT NULL, stream INTEGER NOT NULL,
         record JSONB NOT NULL);
       CREATE INDEX ON {schema}.requests (ts);
       CREATE INDEX ON {schema}.requests (key, ts);
       CREATE INDEX ON {schema}.requests ("user", ts);
       CREATE INDEX ON {schema}.requests (team, ts)""",
    # 2: the front door a request came through (rows from before it came through chat)
    """ALTER TABLE {schema}.requests ADD COLUMN door TEXT NOT NULL DEFAULT 'chat';
       CREATE INDEX ON {schema}.requests (door, ts)""",
    # 3: stored Responses API answers (pointsman.stores.responses), in the same schema;
    # JSON, not JSONB: what was stored comes back as it was (JSONB reorders keys)
    """CREATE TABLE {schema}.responses (
         id TEXT PRIMARY KEY, key TEXT, created DOUBLE PRECISION NOT NULL,
         expires_at DOUBLE PRECISION NOT NULL, items JSON NOT NULL, response JSON NOT NULL);
       CREATE INDEX ON {schema}.responses (expires_at)""",
    # 4: the prompt cache's share of the input (reads, writes) and the output's reasoning
    """ALTER TABLE {schema}.requests ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
       ALTER TABLE {schema}.requests ADD COLUMN cache_creation_tokens INTEGER NOT NULL
         DEFAULT 0;
       ALTER TABLE {schema}.requests ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0""",
    # 5: quality labels of logged requests (feedback, judged samples): one per source
    """CREATE TABLE {schema}.labels (
         request_id TEXT NOT NULL, source TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
         model TEXT, comment TEXT, key TEXT, ts DOUBLE PRECISION NOT NULL,
         PRIMARY KEY (request_id, source));
       CREATE INDEX ON {schema}.labels (ts)""",
    # 6: the online experiment and arm that routed a request
    """ALTER TABLE {schema}.requests ADD COLUMN experiment TEXT;
       ALTER TABLE {schema}.requests ADD COLUMN arm TEXT;
       CREATE INDEX ON {schema}.requests (experiment, ts)""",
    # 7: what a label cost to make (judged samples: the reference and judge calls)
    """ALTER TABLE {schema}.labels ADD COLUMN cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0;
       CREATE INDEX ON {schema}.labels (source, ts)""",
)


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str,
                  migrations: Sequence[str] = MIGRATIONS) -> None:
    """Apply the numbered migrations not yet applied (the ``migrations`` table counts them),
    in one transaction under an advisory lock: the request log and the response store (or
    several gateways) opening the same schema at once apply each migration exactly once."""
    ident = sql.Identifier(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                           (f"pointsman.migrate.{schema}",))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        await conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.migrations (number INTEGER PRIMARY KEY)"
        ).format(ident))
        cur = await conn.execute(
            sql.SQL("SELECT COALESCE(MAX(number), 0) FROM {}.migrations").format(ident))
        row = await cur.fetchone()
        done = int(row[0]) if row else 0
        for number, script in enumerate(migrations[done:], start=done + 1):
            for statement in script.split(";"):
                await conn.execute(sql.SQL(statement).format(schema=ident))
            await conn.execute(sql.SQL(
                "INSERT INTO {}.migrations (number) VALUES (%s)").format(ident), (number,))


class PostgresRequestLog(BatchingRequestLog):
    """Open with :meth:`open` (it connects and migrates)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str,
                 batch_size: int = 500, close_timeout_s: float = 10.0) -> None:
        super().__init__(batch_size, close_timeout_s)
        self._conn = conn
        self.schema = schema
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
        marks = sql.SQL(", ").join(sql.Placeholder() for _ in COLUMNS)
        self._insert = sql.SQL("INSERT INTO {}.requests ({}) VALUES ({}) "
                               "ON CONFLICT (id) DO NOTHING").format(
            sql.Identifier(schema), cols, marks)

    @classmethod
    async def open(cls, dsn: str, schema: str = "pointsman", batch_size: int = 500,
                   connect_timeout_s: float = 5.0) -> PostgresRequestLog:
        conn = await connect_migrated(dsn, schema, "request log", connect_timeout_s)
        return cls(conn, schema, batch_size)

    async def _write_batch(self, batch: Sequence[RequestRecord]) -> None:
        rows = [(*row_of(r)[:-1], Jsonb(json.loads(r.to_json()))) for r in batch]
        try:
            async with self._conn.transaction(), self._conn.cursor() as cur:
                await cur.executemany(self._insert, rows)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"request log PostgreSQL: {exc}") from None

    async def _close_store(self) -> None:
        await self._conn.close()

    async def records(self, since: float = 0.0) -> list[RequestRecord]:
        query = sql.SQL("SELECT record FROM {}.requests WHERE ts >= %s ORDER BY ts").format(
            sql.Identifier(self.schema))
        cur = await self._conn.execute(query, (since,))
        return [RequestRecord.from_mapping(row[0]) for row in await cur.fetchall()]

    async def spend_summary(self, scope: Scope | None, subject: str | None, since: float,
                            until: float, top: int = 5) -> SpendSummary:
        where: sql.Composable = sql.SQL("ts >= %s AND ts < %s")
        params: list[Any] = [since, until]
        if scope is not None:
            where = sql.SQL("{} AND {} = %s").format(where, sql.Identifier(scope))
            params.append(subject)
        table = sql.SQL("{}.requests").format(sql.Identifier(self.schema))
        sums = sql.SQL("").join(sql.SQL(", COALESCE(SUM({}), 0)").format(sql.Identifier(c))
                                for c in TOKEN_SUMS)
        total_q = sql.SQL("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0), "
                          "COALESCE(SUM(baseline_cost_usd), 0){} FROM {} WHERE {}").format(
            sums, table, where)
        model_q = sql.SQL("SELECT model, COUNT(*), SUM(cost_usd), SUM(baseline_cost_usd) "
                          "FROM {} WHERE {} AND model IS NOT NULL GROUP BY model "
                          "ORDER BY SUM(cost_usd) DESC, model LIMIT %s").format(table, where)
        total = await (await self._conn.execute(total_q, params)).fetchone()
        models = await (await self._conn.execute(model_q, [*params, top])).fetchall()
        assert total is not None
        return SpendSummary(int(total[0]), float(total[1]), float(total[2]),
                            tuple(ModelSpend(m, int(n), float(c), float(b))
                                  for m, n, c, b in models),
                            TokenTotals(*(int(t) for t in total[3:])))


async def connect_migrated(dsn: str, schema: str, what: str,
                           connect_timeout_s: float = 5.0) -> psycopg.AsyncConnection[Any]:
    """A connection to the request log's database with its migrations applied, for the
    stores that live beside the log (``what`` names the store in errors)."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout_s)))
    except psycopg.Error as exc:
        raise StoreUnavailableError(f"{what} PostgreSQL unreachable: {exc}") from None
    try:
        await migrate(conn, schema)
    except psycopg.Error as exc:
        await conn.close()
        raise StoreUnavailableError(f"{what} PostgreSQL migration: {exc}") from None
    return conn
