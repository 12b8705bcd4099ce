"""Stored responses in SQLite, in the request log's file (its ``responses`` table comes
from the same numbered migrations). Each call runs in a worker thread, one at a time on
one connection in autocommit mode: a ``put`` has committed when it returns, so the next
``get`` (from this process or another on the same file) sees it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pointsman import jsonio
from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.errors import PointsmanError, StoreUnavailableError
from pointsman.stores.requestlog_sqlite import MIGRATIONS
from pointsman.stores.responses import StoredResponse, taken

T = TypeVar("T")

PUT = ("INSERT INTO responses (id, key, created, expires_at, items, response) "
       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET created = excluded.created, "
       "expires_at = excluded.expires_at, items = excluded.items, "
       "response = excluded.response WHERE responses.key IS excluded.key")
GET = ("SELECT id, key, created, expires_at, items, response FROM responses "
       "WHERE id = ? AND key IS ? AND expires_at > ?")


class SqliteResponseStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.Lock()  # one statement at a time on the shared connection
        try:
            migrate(self._conn, MIGRATIONS)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailableError(f"response store {self.path}: {exc}") from None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._conn)
        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"response store {self.path}: {exc}") from None

    async def put(self, response_id: str, key: str | None, items: list[dict[str, Any]],
                  response: dict[str, Any], expires_at: float) -> None:
        row = (response_id, key, time.time(), expires_at, jsonio.dumps_str(items),
               jsonio.dumps_str(response))
        stored = await self._run(lambda conn: conn.execute(PUT, row).rowcount)
        if stored != 1:
            raise PointsmanError(taken(response_id))

    async def get(self, response_id: str, key: str | None,
                  now: float) -> StoredResponse | None:
        row = await self._run(
            lambda conn: conn.execute(GET, (response_id, key, now)).fetchone())
        if row is None:
            return None
        rid, rkey, created, expires_at, items, response = row
        return StoredResponse(rid, rkey, created, expires_at, jsonio.loads(items),
                              jsonio.loads(response))

    async def delete(self, response_id: str, key: str | None) -> bool:
        deleted = await self._run(lambda conn: conn.execute(
            "DELETE FROM responses WHERE id = ? AND key IS ?", (response_id, key)).rowcount)
        return bool(deleted)

    async def purge(self, now: float) -> int:
        return int(await self._run(lambda conn: conn.execute(
            "DELETE FROM responses WHERE expires_at <= ?", (now,)).rowcount))

    async def aclose(self) -> None:
        await self._run(lambda conn: conn.close())
