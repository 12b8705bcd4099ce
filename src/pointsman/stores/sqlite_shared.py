"""One SQLite connection on the request log's file, migrated with its numbered
migrations, used one statement at a time from worker threads: the base of the stores that
live beside the request log (stored responses, labels)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.errors import StoreUnavailableError
from pointsman.stores.requestlog_sqlite import MIGRATIONS

T = TypeVar("T")


class SharedSqlite:
    """``what`` names the store in errors (``label store``, ``response store``)."""

    what = "store"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.Lock()  # one statement at a time on the shared connection
        try:
            migrate(self._conn, MIGRATIONS)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailableError(f"{self.what} {self.path}: {exc}") from None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._conn)
        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.what} {self.path}: {exc}") from None

    async def aclose(self) -> None:
        await self._run(lambda conn: conn.close())
