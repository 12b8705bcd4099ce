"""Labels in SQLite, in the request log's file (the ``labels`` table of migration 5). One
connection in autocommit mode, one statement at a time in a worker thread: a ``put`` has
committed when it returns."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.errors import StoreUnavailableError
from pointsman.stores.labels import Label, Owner
from pointsman.stores.requestlog_sqlite import MIGRATIONS

T = TypeVar("T")

PUT = ("INSERT INTO labels (request_id, source, score, model, comment, key, ts) "
       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id, source) DO UPDATE SET "
       "score = excluded.score, model = excluded.model, comment = excluded.comment, "
       "key = excluded.key, ts = excluded.ts")
SELECT = ("SELECT request_id, source, score, model, comment, key, ts FROM labels "
          "WHERE request_id = ? ORDER BY source")


class SqliteLabelStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.Lock()
        try:
            migrate(self._conn, MIGRATIONS)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailableError(f"label store {self.path}: {exc}") from None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._conn)
        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"label store {self.path}: {exc}") from None

    async def owner(self, request_id: str) -> Owner:
        row = await self._run(lambda conn: conn.execute(
            "SELECT key FROM requests WHERE id = ?", (request_id,)).fetchone())
        return Owner(False) if row is None else Owner(True, row[0])

    async def put(self, label: Label) -> bool:
        row = (label.request_id, label.source, label.score, label.model, label.comment,
               label.key, label.ts)

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

    async def aclose(self) -> None:
        await self._run(lambda conn: conn.close())
