"""Open the configured request log: PostgreSQL when a DSN is given, else SQLite."""

from __future__ import annotations

from pathlib import Path

from pointsman.stores.requestlog_batch import BatchingRequestLog


async def open_request_log(sqlite_path: str | Path, postgres_dsn: str | None = None,
                           schema: str = "pointsman", batch_size: int = 500
                           ) -> BatchingRequestLog:
    """A started request log; psycopg is imported only when PostgreSQL is configured."""
    if postgres_dsn:
        from pointsman.stores.requestlog_postgres import PostgresRequestLog

        return await PostgresRequestLog.open(postgres_dsn, schema, batch_size)
    from pointsman.stores.requestlog_sqlite import SqliteRequestLog

    return SqliteRequestLog(sqlite_path, batch_size)
