"""The request log in SQLite (the embedded default): WAL mode, numbered migrations, batched
inserts in a worker thread so the event loop never waits on the disk. The migrations are
the whole file's: the stored responses (:mod:`pointsman.stores.responses_sqlite`) live in
the same file and apply the same tuple, so either store can open a file first."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pointsman.budget.spend import TOKEN_SUMS, ModelSpend, Scope, SpendSummary, TokenTotals
from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.errors import StoreUnavailableError
from pointsman.requestlog import RequestRecord
from pointsman.stores.requestlog_batch import BatchingRequestLog

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE requests (
         id TEXT PRIMARY KEY, ts REAL NOT NULL, key TEXT, user TEXT, team TEXT, session TEXT,
         requested_model TEXT NOT NULL, model TEXT, outcome TEXT NOT NULL, error TEXT,
         prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
         cost_usd REAL NOT NULL, baseline_cost_usd REAL NOT NULL, ttft_ms REAL,
         total_ms REAL NOT NULL, stream INTEGER NOT NULL, record TEXT NOT NULL);
       CREATE INDEX requests_ts ON requests (ts);
       CREATE INDEX requests_key_ts ON requests (key, ts);
       CREATE INDEX requests_user_ts ON requests (user, ts);
       CREATE INDEX requests_team_ts ON requests (team, ts);""",
    # 2: the front door a request came through (rows from before it came through chat)
    """ALTER TABLE requests ADD COLUMN door TEXT NOT NULL DEFAULT 'chat';
       CREATE INDEX requests_door_ts ON requests (door, ts);""",
    # 3: stored Responses API answers (pointsman.stores.responses), in the same file
    """CREATE TABLE responses (
         id TEXT PRIMARY KEY, key TEXT, created REAL NOT NULL, expires_at REAL NOT NULL,
         items TEXT NOT NULL, response TEXT NOT NULL);
       CREATE INDEX responses_expires_at ON responses (expires_at);""",
    # 4: the prompt cache's share of the input (reads, writes) and the output's reasoning
    """ALTER TABLE requests ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
       ALTER TABLE requests ADD COLUMN cache_creation_tokens INTEGER NOT NULL DEFAULT 0;
       ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;""",
    # 5: quality labels of logged requests (feedback, judged samples): one per source
    """CREATE TABLE labels (
         request_id TEXT NOT NULL, source TEXT NOT NULL, score REAL NOT NULL, model TEXT,
         comment TEXT, key TEXT, ts REAL NOT NULL, PRIMARY KEY (request_id, source));
       CREATE INDEX labels_ts ON labels (ts);""",
    # 6: the online experiment and arm that routed a request
    """ALTER TABLE requests ADD COLUMN experiment TEXT;
       ALTER TABLE requests ADD COLUMN arm TEXT;
       CREATE INDEX requests_experiment_ts ON requests (experiment, ts);""",
    # 7: what a label cost to make (judged samples: the reference and judge calls)
    """ALTER TABLE labels ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
       CREATE INDEX labels_source_ts ON labels (source, ts);""",
    # 8: the per-subject indexes keep only the rows that have the subject (most requests
    # have no user, team or experiment; an open gateway's no key): a quarter less work per
    # insert. Queries name a subject (``user = ?``, ``IS NOT NULL``), which these still serve
    """DROP INDEX requests_key_ts;
       DROP INDEX requests_user_ts;
       DROP INDEX requests_team_ts;
       DROP INDEX requests_experiment_ts;
       CREATE INDEX requests_key_ts ON requests (key, ts) WHERE key IS NOT NULL;
       CREATE INDEX requests_user_ts ON requests (user, ts) WHERE user IS NOT NULL;
       CREATE INDEX requests_team_ts ON requests (team, ts) WHERE team IS NOT NULL;
       CREATE INDEX requests_experiment_ts ON requests (experiment, ts)
         WHERE experiment IS NOT NULL;""",
)

COLUMNS = ("id", "ts", "key", "user", "team", "session", "requested_model", "model", "outcome",
           "error", "prompt_tokens", "completion_tokens", "cost_usd", "baseline_cost_usd",
           "ttft_ms", "total_ms", "stream", "door", "cached_tokens", "cache_creation_tokens",
           "reasoning_tokens", "experiment", "arm", "record")  # record stays last
SCOPES = {"key": "key", "user": "user", "team": "team"}


def row_of(record: RequestRecord) -> tuple[Any, ...]:
    r = record
    return (r.id, r.ts, r.key, r.user, r.team, r.session, r.requested_model, r.model,
            r.outcome, r.error, r.prompt_tokens, r.completion_tokens, r.cost_usd,
            r.baseline_cost_usd, r.ttft_ms, r.total_ms, int(r.stream), r.door,
            r.cached_tokens, r.cache_creation_tokens, r.reasoning_tokens, r.experiment, r.arm,
            r.to_json())


class SqliteRequestLog(BatchingRequestLog):
    def __init__(self, path: str | Path, batch_size: int = 500,
                 close_timeout_s: float = 10.0) -> None:
        super().__init__(batch_size, close_timeout_s)
        self.path = Path(path)
        self._conn = connect(self.path)
        migrate(self._conn, MIGRATIONS)
        placeholders = ", ".join("?" for _ in COLUMNS)
        self._insert = (f"INSERT OR IGNORE INTO requests ({', '.join(COLUMNS)}) "
                        f"VALUES ({placeholders})")

    def _write_sync(self, batch: Sequence[RequestRecord]) -> None:
        rows = [row_of(r) for r in batch]  # in the worker thread, off the event loop
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(self._insert, rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def _write_batch(self, batch: Sequence[RequestRecord]) -> None:
        try:
            await asyncio.to_thread(self._write_sync, batch)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"request log {self.path}: {exc}") from None

    async def _close_store(self) -> None:
        self._conn.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(str(self.path))
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    async def records(self, since: float = 0.0) -> list[RequestRecord]:
        rows = await asyncio.to_thread(
            self._query, "SELECT record FROM requests WHERE ts >= ? ORDER BY ts", (since,))
        return [RequestRecord.from_mapping(json.loads(row[0])) for row in rows]

    async def spend_summary(self, scope: Scope | None, subject: str | None, since: float,
                            until: float, top: int = 5) -> SpendSummary:
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [since, until]
        if scope is not None:
            where += f" AND {SCOPES[scope]} = ?"
            params.append(subject)
        sums = "".join(f", COALESCE(SUM({c}), 0)" for c in TOKEN_SUMS)
        total_sql = ("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0), "
                     f"COALESCE(SUM(baseline_cost_usd), 0){sums} FROM requests WHERE {where}")
        model_sql = ("SELECT model, COUNT(*), SUM(cost_usd), SUM(baseline_cost_usd) FROM "
                     f"requests WHERE {where} AND model IS NOT NULL GROUP BY model "
                     "ORDER BY SUM(cost_usd) DESC, model LIMIT ?")
        [total] = await asyncio.to_thread(self._query, total_sql, params)
        models = await asyncio.to_thread(self._query, model_sql, [*params, top])
        return SpendSummary(int(total[0]), float(total[1]), float(total[2]),
                            tuple(ModelSpend(m, int(n), float(c), float(b))
                                  for m, n, c, b in models),
                            TokenTotals(*(int(t) for t in total[3:])))
