"""Open the configured request log and response store: PostgreSQL when a DSN is given,
else SQLite. Both live in the same database (file or schema)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pointsman.stores.requestlog_batch import BatchingRequestLog
from pointsman.stores.responses import ResponseStore


async def open_request_log(sqlite_path: str | Path, postgres_dsn: str | None = None,
                           schema: str = "pointsman", batch_size: int = 500
                           ) -> BatchingRequestLog:
    """A started request log; psycopg is imported only when PostgreSQL is configured."""
    if postgres_dsn:
        from pointsman.stores.requestlog_postgres import PostgresRequestLog

        return await PostgresRequestLog.open(postgres_dsn, schema, batch_size)
    from pointsman.stores.requestlog_sqlite import SqliteRequestLog

    return SqliteRequestLog(sqlite_path, batch_size)


async def open_response_store(sqlite_path: str | Path, postgres_dsn: str | None = None,
                              postgres_schema: str = "pointsman") -> ResponseStore:
    """The stored responses of the Responses door, in the request log's database."""
    if postgres_dsn:
        from pointsman.stores.responses_postgres import PostgresResponseStore

        return await PostgresResponseStore.open(postgres_dsn, postgres_schema)
    from pointsman.stores.responses_sqlite import SqliteResponseStore

    return await asyncio.to_thread(SqliteResponseStore, sqlite_path)  # migrating may wait
