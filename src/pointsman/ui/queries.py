"""The dashboard's read-only queries over the request log (SQLite or PostgreSQL): aggregates
in time buckets, a filtered page of requests, one request's record, labels.

Every query runs in a worker thread on a connection of its own (SQLite read-only; a short
PostgreSQL connection), so the dashboard never shares or blocks the log's writer. The two
databases differ in four spellings only (:class:`Dialect`); the SQL is written once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointsman.errors import StoreUnavailableError
from pointsman.gateway.config import RequestLogConfig

MAX_PAGE = 200
FILTERS = ("model", "outcome", "key", "user", "team", "door", "experiment")
LIST_COLUMNS = ("id", "ts", "key", "user", "team", "door", "requested_model", "model",
                "outcome", "error", "prompt_tokens", "completion_tokens", "cost_usd",
                "baseline_cost_usd", "ttft_ms", "total_ms", "stream", "experiment", "arm")


@dataclass(frozen=True, slots=True)
class Dialect:
    requests: str  # the requests table, qualified
    labels: str
    bucket: str  # a row's time bucket, given one parameter (``?``): the bucket's width

    def json(self, *path: str) -> str:
        """A text field of the ``record`` column's JSON."""
        raise NotImplementedError


class _SqliteDialect(Dialect):
    def json(self, *path: str) -> str:
        return f"json_extract(record, '$.{'.'.join(path)}')"


class _PostgresDialect(Dialect):
    def json(self, *path: str) -> str:
        inner = "".join(f"->'{p}'" for p in path[:-1])
        return f"(record{inner}->>'{path[-1]}')"


def _sqlite_dialect() -> Dialect:
    return _SqliteDialect("requests", "labels", "CAST(ts / ? AS INTEGER)")


def _postgres_dialect(schema: str) -> Dialect:
    quoted = '"' + schema.replace('"', '""') + '"'
    return _PostgresDialect(f"{quoted}.requests", f"{quoted}.labels",
                            "CAST(floor(ts / ?) AS BIGINT)")


def reason_kind_sql(d: Dialect) -> str:
    """The SQL twin of :func:`pointsman.gateway.metrics.reason_kind` (bounded labels)."""
    rule, reason = d.json("decision", "rule"), d.json("decision", "reason")
    return (f"CASE WHEN {rule} IS NOT NULL THEN 'rule:' || {rule} "
            f"WHEN {reason} IS NULL THEN 'no decision' "
            f"WHEN {reason} LIKE 'model %' THEN 'explicit' "
            f"WHEN {reason} LIKE 'score %' AND {reason} LIKE '%strong%' "
            "THEN 'threshold:strong' "
            f"WHEN {reason} LIKE 'score %' THEN 'threshold:weak' ELSE 'weighted' END")


class LogReader:
    """Reads the configured request log; every method is async and read-only."""

    def __init__(self, cfg: RequestLogConfig) -> None:
        self.cfg = cfg
        self.postgres = bool(cfg.postgres_dsn)
        self.d = _postgres_dialect(cfg.postgres_schema) if self.postgres else _sqlite_dialect()

    def _run_sqlite(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        file = Path(self.cfg.sqlite_path).expanduser()
        if not file.is_file():
            return []  # nothing logged yet
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"request log {file}: {exc}") from None
        finally:
            conn.close()

    def _run_postgres(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        assert self.cfg.postgres_dsn is not None
        try:
            with psycopg.connect(self.cfg.postgres_dsn, connect_timeout=5) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"request log PostgreSQL: {exc}") from None

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one query written with ``?`` marks (psycopg's are ``%s``, its ``%`` doubled)."""
        if self.postgres:
            pg = sql.replace("%", "%%").replace("?", "%s")
            return await asyncio.to_thread(self._run_postgres, pg, params)
        return await asyncio.to_thread(self._run_sqlite, sql, params)

    # -- aggregates ---------------------------------------------------------------------
    async def totals(self, since: float, step: float) -> list[dict[str, Any]]:
        """Per time bucket: requests, failures, cost, always-strongest cost, tokens."""
        d = self.d
        sql = (f"SELECT {d.bucket} AS b, COUNT(*), "
               "SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END), "
               "COALESCE(SUM(cost_usd), 0), COALESCE(SUM(baseline_cost_usd), 0), "
               "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
               f"AVG(total_ms) FROM {d.requests} WHERE ts >= ? GROUP BY b ORDER BY b")
        rows = await self._rows(sql, (step, since))
        return [{"t": int(b) * step, "requests": int(n), "failed": int(f),
                 "cost_usd": float(c), "baseline_cost_usd": float(bc),
                 "prompt_tokens": int(pt), "completion_tokens": int(ct),
                 "mean_ms": None if ms is None else float(ms)}
                for b, n, f, c, bc, pt, ct, ms in rows]

    async def routing(self, since: float, step: float) -> list[tuple[float, str, str, int]]:
        """(bucket start, answering model, reason kind, requests) per bucket."""
        d = self.d
        kind = reason_kind_sql(d)
        sql = (f"SELECT {d.bucket} AS b, COALESCE(model, '(none)') AS m, {kind} AS k, "
               f"COUNT(*) FROM {d.requests} WHERE ts >= ? GROUP BY b, m, k ORDER BY b")
        rows = await self._rows(sql, (step, since))
        return [(int(b) * step, str(m), str(k), int(n)) for b, m, k, n in rows]

    async def model_latency(self, since: float, step: float) -> list[tuple[float, str, float]]:
        """(bucket start, model, mean total ms) of answered requests."""
        d = self.d
        sql = (f"SELECT {d.bucket} AS b, model, AVG(total_ms) FROM {d.requests} "
               "WHERE ts >= ? AND model IS NOT NULL AND outcome = 'ok' "
               "GROUP BY b, model ORDER BY b")
        rows = await self._rows(sql, (step, since))
        return [(int(b) * step, str(m), float(ms)) for b, m, ms in rows]

    async def top_subjects(self, column: str, since: float, limit: int = 10) -> list[str]:
        """The ``key``/``user``/``team`` values that spent most since ``since``."""
        assert column in ("key", "user", "team")
        sql = (f'SELECT "{column}" FROM {self.d.requests} WHERE ts >= ? AND "{column}" '
               f'IS NOT NULL GROUP BY "{column}" ORDER BY SUM(cost_usd) DESC LIMIT ?')
        return [str(r[0]) for r in await self._rows(sql, (since, limit))]

    async def labels(self, since: float) -> list[dict[str, Any]]:
        """Labels by source and the labelled request's model: count and mean score."""
        d = self.d
        sql = (f"SELECT l.source, COALESCE(l.model, r.model, '(unknown)') AS m, COUNT(*), "
               f"AVG(l.score) FROM {d.labels} l LEFT JOIN {d.requests} r "
               "ON r.id = l.request_id WHERE l.ts >= ? GROUP BY l.source, m "
               "ORDER BY l.source, m")
        rows = await self._rows(sql, (since,))
        return [{"source": s, "model": m, "labels": int(n), "mean_score": float(a)}
                for s, m, n, a in rows]

    # -- the request browser ------------------------------------------------------------
    async def page(self, filters: Mapping[str, str], since: float, before: float | None,
                   limit: int) -> list[dict[str, Any]]:
        """Newest first: the requests matching every filter (exact values)."""
        d = self.d
        where: list[str] = ["ts >= ?"]
        params: list[Any] = [since]
        if before is not None:
            where.append("ts < ?")
            params.append(before)
        for name in FILTERS:
            value = filters.get(name)
            if value:
                where.append(f'"{name}" = ?')
                params.append(value)
        cols = ", ".join(f'"{c}"' for c in LIST_COLUMNS)
        sql = (f"SELECT {cols}, {d.json('decision', 'reason')}, {d.json('messages')} "
               f"FROM {d.requests} WHERE {' AND '.join(where)} ORDER BY ts DESC LIMIT ?")
        rows = await self._rows(sql, (*params, max(1, min(limit, MAX_PAGE))))
        out = []
        for row in rows:
            item = dict(zip(LIST_COLUMNS, row, strict=False))
            item["stream"] = bool(item["stream"])
            item["reason"] = row[len(LIST_COLUMNS)]
            item["prompt"] = prompt_preview(row[len(LIST_COLUMNS) + 1])
            out.append(item)
        return out

    async def choices(self, since: float) -> dict[str, list[str]]:
        """The values each filter can take in the window (at most 100 each)."""
        found: dict[str, list[str]] = {}
        for name in FILTERS:
            sql = (f'SELECT DISTINCT "{name}" FROM {self.d.requests} WHERE ts >= ? AND '
                   f'"{name}" IS NOT NULL ORDER BY "{name}" LIMIT 100')
            found[name] = [str(r[0]) for r in await self._rows(sql, (since,))]
        return found

    async def record(self, request_id: str) -> dict[str, Any] | None:
        rows = await self._rows(f"SELECT record FROM {self.d.requests} WHERE id = ?",
                                (request_id,))
        if not rows:
            return None
        raw = rows[0][0]
        found: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
        labels = await self._rows(
            f"SELECT source, score, model, comment, ts FROM {self.d.labels} "
            "WHERE request_id = ? ORDER BY ts", (request_id,))
        found["labels"] = [{"source": s, "score": float(v), "model": m, "comment": c,
                            "ts": float(t)} for s, v, m, c, t in labels]
        return found


PREVIEW_CHARS = 160


def prompt_preview(raw: Any) -> str | None:
    """The last user message's text, shortened (None when messages are not logged)."""
    messages = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text(message.get("content"))
            return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
