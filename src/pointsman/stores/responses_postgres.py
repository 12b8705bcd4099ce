"""Stored responses in PostgreSQL, in the request log's schema (its ``responses`` table
comes from the same numbered migrations). One async psycopg connection in autocommit
mode, as the request log uses: a ``put`` has committed when it returns."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from pointsman.errors import PointsmanError, StoreUnavailableError
from pointsman.stores.requestlog_postgres import connect_migrated
from pointsman.stores.responses import StoredResponse, taken

PUT = ("INSERT INTO {}.responses AS r (id, key, created, expires_at, items, response) "
       "VALUES (%s, %s, %s, %s, %s, %s) "
       "ON CONFLICT (id) DO UPDATE SET created = excluded.created, "
       "expires_at = excluded.expires_at, items = excluded.items, "
       "response = excluded.response WHERE r.key IS NOT DISTINCT FROM excluded.key")
GET = ("SELECT id, key, created, expires_at, items, response FROM {}.responses "
       "WHERE id = %s AND key IS NOT DISTINCT FROM %s::text AND expires_at > %s")
DELETE = "DELETE FROM {}.responses WHERE id = %s AND key IS NOT DISTINCT FROM %s::text"
PURGE = "DELETE FROM {}.responses WHERE expires_at <= %s"


class PostgresResponseStore:
    """Open with :meth:`open` (it connects and migrates)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self._conn = conn
        self.schema = schema
        ident = sql.Identifier(schema)
        self._sql = {name: sql.SQL(text).format(ident) for name, text in
                     (("put", PUT), ("get", GET), ("delete", DELETE), ("purge", PURGE))}

    @classmethod
    async def open(cls, dsn: str, schema: str = "pointsman",
                   connect_timeout_s: float = 5.0) -> PostgresResponseStore:
        return cls(await connect_migrated(dsn, schema, "response store", connect_timeout_s), schema)

    async def _execute(self, name: str, params: tuple[Any, ...]) -> psycopg.AsyncCursor[Any]:
        try:
            return await self._conn.execute(self._sql[name], params)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"response store PostgreSQL: {exc}") from None

    async def put(self, response_id: str, key: str | None, items: list[dict[str, Any]],
                  response: dict[str, Any], expires_at: float) -> None:
        cur = await self._execute(
            "put", (response_id, key, time.time(), expires_at, Json(items), Json(response)))
        if cur.rowcount != 1:
            raise PointsmanError(taken(response_id))

    async def get(self, response_id: str, key: str | None,
                  now: float) -> StoredResponse | None:
        cur = await self._execute("get", (response_id, key, now))
        row = await cur.fetchone()
        if row is None:
            return None
        rid, rkey, created, expires_at, items, response = row
        return StoredResponse(rid, rkey, float(created), float(expires_at), items, response)

    async def delete(self, response_id: str, key: str | None) -> bool:
        return (await self._execute("delete", (response_id, key))).rowcount > 0

    async def purge(self, now: float) -> int:
        return (await self._execute("purge", (now,))).rowcount

    async def aclose(self) -> None:
        await self._conn.close()
