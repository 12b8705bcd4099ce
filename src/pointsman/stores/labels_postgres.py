"""Labels in PostgreSQL, in the request log's schema (the ``labels`` table of migration
5). One async psycopg connection in autocommit mode: a ``put`` has committed when it
returns."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pointsman.budget.spend import Scope
from pointsman.errors import StoreUnavailableError
from pointsman.stores.labels import Label, Owner
from pointsman.stores.requestlog_postgres import connect_migrated

OWNER = "SELECT key FROM {}.requests WHERE id = %s"
PUT = ("INSERT INTO {}.labels AS l (request_id, source, score, model, comment, key, ts, "
       "cost_usd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (request_id, source) "
       "DO UPDATE SET score = excluded.score, model = excluded.model, "
       "comment = excluded.comment, key = excluded.key, ts = excluded.ts, "
       "cost_usd = excluded.cost_usd RETURNING (xmax <> 0)")
SELECT = ("SELECT request_id, source, score, model, comment, key, ts, cost_usd FROM {}.labels "
          "WHERE request_id = %s ORDER BY source")
QUALITY = ("SELECT CASE WHEN l.source = 'judge' THEN 'judge' ELSE 'feedback' END AS kind, "
           "COUNT(*), AVG(l.score) FROM {s}.labels l JOIN {s}.requests r ON r.id = l.request_id "
           "WHERE r.ts >= %s AND r.ts < %s AND (l.model IS NULL OR l.model = r.model)")
SCOPES = {"key": " AND r.key = %s", "user": ' AND r."user" = %s', "team": " AND r.team = %s"}
SPEND = ("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM {}.labels "
         "WHERE source = %s AND ts >= %s AND ts < %s")


class PostgresLabelStore:
    """Open with :meth:`open` (it connects and migrates)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self._conn = conn
        ident = sql.Identifier(schema)
        self._ident = ident
        self._sql = {name: sql.SQL(text).format(ident) for name, text in
                     (("owner", OWNER), ("put", PUT), ("select", SELECT),
                                                  ("spend", SPEND))}

    @classmethod
    async def open(cls, dsn: str, schema: str = "pointsman",
                   connect_timeout_s: float = 5.0) -> PostgresLabelStore:
        return cls(await connect_migrated(dsn, schema, "label store", connect_timeout_s), schema)

    async def _rows(self, name: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            cur = await self._conn.execute(self._sql[name], params)
            return await cur.fetchall()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"label store PostgreSQL: {exc}") from None

    async def owner(self, request_id: str) -> Owner:
        rows = await self._rows("owner", (request_id,))
        return Owner(True, rows[0][0]) if rows else Owner(False)

    async def put(self, label: Label) -> bool:
        rows = await self._rows("put", (label.request_id, label.source, label.score,
                                        label.model, label.comment, label.key, label.ts,
                                        label.cost_usd))
        return bool(rows[0][0])

    async def labels(self, request_id: str) -> list[Label]:
        rows = await self._rows("select", (request_id,))
        return [Label(r[0], r[1], float(r[2]), r[3], r[4], r[5], float(r[6]), float(r[7]))
                for r in rows]

    async def spend(self, source: str, since: float, until: float) -> tuple[int, float]:
        [row] = await self._rows("spend", (source, since, until))
        return int(row[0]), float(row[1])

    async def quality(self, scope: Scope | None, subject: str | None, since: float,
                      until: float) -> dict[str, tuple[int, float | None]]:
        text = QUALITY + (SCOPES[scope] if scope else "") + " GROUP BY kind"
        query = sql.SQL(text).format(s=self._ident)
        params = (since, until, subject) if scope else (since, until)
        try:
            cur = await self._conn.execute(query, params)
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"label store PostgreSQL: {exc}") from None
        return {k: (int(n), None if m is None else float(m)) for k, n, m in rows}

    async def aclose(self) -> None:
        await self._conn.close()
