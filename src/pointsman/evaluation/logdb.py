"""The gateway's request log database as evaluation data: the SQLite file or PostgreSQL
schema the gateway writes, read with the labels stored beside it (feedback, judged
samples), so ``eval``, ``calibrate``, ``shadow`` and ``train`` read the live log directly.

``--data`` names it as ``sqlite:///pointsman-requests.db`` (relative) or
``sqlite:////var/lib/pointsman/requests.db`` (absolute), as SQLAlchemy spells them, or
as the bare path of the SQLite file, or as a PostgreSQL DSN
``postgresql://user@host/db`` (schema ``pointsman`` unless the DSN ends in ``#schema``).

Each record comes out as the JSON object the JSON Lines export holds, its ``quality`` made
from its labels: per graded model (the answering model unless the label names another),
the mean of its sources' scores. Prompts are in the records only when the gateway logs
them (``gateway.request_log.log_messages: true``; off by default). Without them every
record still carries ``prompt_hash`` (SHA-256 of the last user message's text) to join
with prompts kept elsewhere, but the lab cannot replay or score it (see
:mod:`pointsman.evaluation.logs`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pointsman.errors import DataError

SQLITE_MAGIC = b"SQLite format 3\x00"
Labels = Mapping[str, Mapping[str, list[float]]]  # request id → model ('' = answering) → scores


def is_database(path: str | Path) -> bool:
    """Whether ``--data`` names a request log database rather than JSON Lines."""
    text = str(path)
    if text.startswith(("sqlite://", "postgresql://", "postgres://")):
        return True
    file = Path(text).expanduser()
    try:
        with file.open("rb") as handle:
            return file.is_file() and handle.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def db_records(path: str | Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Every record of the database in time order, labels folded into ``quality``."""
    text = str(path)
    if text.startswith(("postgresql://", "postgres://")):
        rows, labels = _postgres(text)
    else:
        rows, labels = _sqlite(_sqlite_path(text))
    for number, item in enumerate(rows, start=1):
        graded = labels.get(str(item.get("id")))
        if graded:
            item["quality"] = _quality(item, graded)
        yield text, number, item


def _quality(item: Mapping[str, Any], graded: Mapping[str, list[float]]) -> dict[str, float]:
    answering = item.get("model")
    out: dict[str, float] = {}
    for model, scores in graded.items():
        name = model or answering
        if isinstance(name, str) and name:
            out[name] = sum(scores) / len(scores)
    return out


def _sqlite_path(text: str) -> Path:
    # as SQLAlchemy spells it: sqlite:///relative.db, sqlite:////absolute/path.db
    file = Path(text.removeprefix("sqlite:///") if text.startswith("sqlite:///")
                else text).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: request log database not found")
    return file


def _sqlite(file: Path) -> tuple[list[dict[str, Any]], Labels]:
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"{file}: cannot open ({exc})") from None
    try:
        rows = conn.execute("SELECT record FROM requests ORDER BY ts").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        labels = conn.execute("SELECT request_id, model, score FROM labels").fetchall() \
            if "labels" in tables else []
    except sqlite3.Error as exc:
        raise DataError(f"{file}: not a pointsman request log ({exc})") from None
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows], _by_request(labels)


def _postgres(dsn: str) -> tuple[list[dict[str, Any]], Labels]:
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise DataError("reading a PostgreSQL request log needs psycopg") from None
    dsn, _, schema = dsn.partition("#")
    ident = sql.Identifier(schema or "pointsman")
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            rows = conn.execute(sql.SQL("SELECT record FROM {}.requests ORDER BY ts").format(
                ident)).fetchall()
            labels = conn.execute(sql.SQL(
                "SELECT request_id, model, score FROM {}.labels").format(ident)).fetchall()
    except psycopg.Error as exc:
        raise DataError(f"PostgreSQL request log {schema or 'pointsman'}: {exc}") from None
    return [dict(r[0]) for r in rows], _by_request(labels)


def _by_request(rows: list[tuple[Any, ...]]) -> Labels:
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for request_id, model, score in rows:
        out[str(request_id)][model or ""].append(float(score))
    return out
