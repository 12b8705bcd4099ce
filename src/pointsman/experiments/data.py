"""An experiment's requests read back from the request log database (SQLite file or
PostgreSQL schema), each with the mean of its labels for the model that answered."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointsman.errors import DataError
from pointsman.gateway.config import RequestLogConfig

QUERY = ("SELECT r.arm, r.model, r.outcome, r.cost_usd, r.baseline_cost_usd, r.total_ms, "
         "(SELECT AVG(l.score) FROM {labels} l WHERE l.request_id = r.id AND "
         "(l.model IS NULL OR l.model = r.model)) FROM {requests} r "
         "WHERE r.experiment = {mark} ORDER BY r.ts")


@dataclass(frozen=True, slots=True)
class Row:
    arm: str
    model: str | None
    outcome: str
    cost_usd: float
    baseline_cost_usd: float
    total_ms: float
    quality: float | None


def log_source(cfg: RequestLogConfig) -> str:
    """The ``--data`` spelling of the configured request log database."""
    if cfg.postgres_dsn:
        return f"{cfg.postgres_dsn}#{cfg.postgres_schema}"
    return str(cfg.sqlite_path)


def experiment_rows(source: str, experiment: str) -> list[Row]:
    if source.startswith(("postgresql://", "postgres://")):
        raw = _postgres(source, experiment)
    else:
        raw = _sqlite(source.removeprefix("sqlite:///"), experiment)
    return [Row(str(a), m, str(o), float(c), float(b), float(t),
                None if q is None else float(q)) for a, m, o, c, b, t, q in raw]


def _sqlite(path: str, experiment: str) -> list[tuple[Any, ...]]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: request log database not found")
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(QUERY.format(labels="labels", requests="requests", mark="?"),
                            (experiment,)).fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{file}: not a request log with experiments ({exc})") from None
    finally:
        conn.close()


def _postgres(source: str, experiment: str) -> list[tuple[Any, ...]]:
    import psycopg
    from psycopg import sql

    dsn, _, schema = source.partition("#")
    ident = sql.Identifier(schema or "pointsman")
    query = sql.SQL(QUERY.format(labels="{s}.labels", requests="{s}.requests",
                                 mark="%s")).format(s=ident)
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            return list(conn.execute(query, (experiment,)).fetchall())
    except psycopg.Error as exc:
        raise DataError(f"PostgreSQL request log {schema or 'pointsman'}: {exc}") from None
