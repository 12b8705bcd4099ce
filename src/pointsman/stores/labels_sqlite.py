"""Labels in SQLite, in the request log's file (the ``labels`` table of migration 5). One
connection in autocommit mode, one statement at a time in a worker thread: a ``put`` has
committed when it returns."""

from __future__ import annotations

import sqlite3

from pointsman.stores.labels import Label, Owner
from pointsman.stores.sqlite_shared import SharedSqlite

PUT = ("INSERT INTO labels (request_id, source, score, model, comment, key, ts, cost_usd) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id, source) DO UPDATE SET "
       "score = excluded.score, model = excluded.model, comment = excluded.comment, "
       "key = excluded.key, ts = excluded.ts, cost_usd = excluded.cost_usd")
SELECT = ("SELECT request_id, source, score, model, comment, key, ts, cost_usd FROM labels "
          "WHERE request_id = ? ORDER BY source")
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
