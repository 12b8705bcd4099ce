"""Labels in SQLite, in the request log's file (the ``labels`` table of migration 5). One
connection in autocommit mode, one statement at a time in a worker thread: a ``put`` has
committed when it returns."""

from __future__ import annotations

import sqlite3

from pointsman.budget.spend import Scope
from pointsman.stores.labels import Label, Owner
from pointsman.stores.sqlite_shared import SharedSqlite

PUT = ("INSERT INTO labels (request_id, source, score, model, comment, key, ts, cost_usd) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id, source) DO UPDATE SET "
       "score = excluded.score, model = excluded.model, comment = excluded.comment, "
       "key = excluded.key, ts = excluded.ts, cost_usd = excluded.cost_usd")
SELECT = ("SELECT request_id, source, score, model, comment, key, ts, cost_usd FROM labels "
          "WHERE request_id = ? ORDER BY source")
QUALITY = ("SELECT CASE WHEN l.source = 'judge' THEN 'judge' ELSE 'feedback' END AS kind, "
           "COUNT(*), AVG(l.score) FROM labels l JOIN requests r ON r.id = l.request_id "
           "WHERE r.ts >= ? AND r.ts < ? AND (l.model IS NULL OR l.model = r.model){scope} "
           "GROUP BY kind")
SCOPES = {"key": " AND r.key = ?", "user": ' AND r."user" = ?', "team": " AND r.team = ?"}
SPEND = ("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM labels "
         "WHERE source = ? AND ts >= ? AND ts < ?")


class SqliteLabelStore(SharedSqlite):
    what = "label store"

    async def owner(self, request_id: str) -> Owner:
        row = await self._run(lambda conn: conn.execute(
            "SELECT key FROM requests WHERE id = ?", (request_id,)).fetchone())
        return Owner(False) if row is None else Owner(True, row[0])

    async def put(self, label: Label) -> bool:
        row = (label.request_id, label.source, label.score, label.model, label.comment,
               label.key, label.ts, label.cost_usd)

        def upsert(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                had = conn.execute("SELECT 1 FROM labels WHERE request_id = ? AND source = ?",
                                   row[:2]).fetchone() is not None
                conn.execute(PUT, row)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return had
        return await self._run(upsert)

    async def labels(self, request_id: str) -> list[Label]:
        rows = await self._run(lambda conn: conn.execute(SELECT, (request_id,)).fetchall())
        return [Label(*row) for row in rows]

    async def spend(self, source: str, since: float, until: float) -> tuple[int, float]:
        row = await self._run(lambda conn: conn.execute(SPEND, (source, since, until))
                              .fetchone())
        return int(row[0]), float(row[1])

    async def quality(self, scope: Scope | None, subject: str | None, since: float,
                      until: float) -> dict[str, tuple[int, float | None]]:
        query = QUALITY.format(scope=SCOPES[scope] if scope else "")
        params = (since, until, subject) if scope else (since, until)
        rows = await self._run(lambda conn: conn.execute(query, params).fetchall())
        return {k: (int(n), None if m is None else float(m)) for k, n, m in rows}
