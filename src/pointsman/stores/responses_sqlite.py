"""Stored responses in SQLite, in the request log's file (its ``responses`` table comes
from the same numbered migrations). Each call runs in a worker thread, one at a time on
one connection in autocommit mode: a ``put`` has committed when it returns, so the next
``get`` (from this process or another on the same file) sees it."""

from __future__ import annotations

import time
from typing import Any

from pointsman import jsonio
from pointsman.errors import PointsmanError
from pointsman.stores.responses import StoredResponse, taken
from pointsman.stores.sqlite_shared import SharedSqlite

PUT = ("INSERT INTO responses (id, key, created, expires_at, items, response) "
       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET created = excluded.created, "
       "expires_at = excluded.expires_at, items = excluded.items, "
       "response = excluded.response WHERE responses.key IS excluded.key")
GET = ("SELECT id, key, created, expires_at, items, response FROM responses "
       "WHERE id = ? AND key IS ? AND expires_at > ?")


class SqliteResponseStore(SharedSqlite):
    what = "response store"

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
