"""The embedded spend ledger: SQLite in WAL mode, one ``BEGIN IMMEDIATE`` transaction per
operation (so several processes on one machine serialise correctly), numbered migrations.
Spend survives a restart: a new ledger on the same file sees everything settled before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pointsman.budget.ledger import (
    SETTLED_KEEP_S,
    Check,
    Hold,
    Totals,
    purge,
    release_in,
    renew_in,
    reserve_in,
    settle_in,
    sum_totals,
)
from pointsman.errors import StoreUnavailableError

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE counters (name TEXT PRIMARY KEY, spent INTEGER NOT NULL DEFAULT 0,
       held INTEGER NOT NULL DEFAULT 0, req INTEGER NOT NULL DEFAULT 0, expires_at REAL);
       CREATE TABLE holds (token TEXT PRIMARY KEY, info TEXT NOT NULL, expires_at REAL NOT NULL);
       CREATE INDEX holds_expiry ON holds (expires_at);
       CREATE TABLE alerts (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);""",
    # 2: settled tokens, so a retried or replayed settle charges once
    """CREATE TABLE settled (token TEXT PRIMARY KEY, at REAL NOT NULL);
       CREATE INDEX settled_at ON settled (at);""",
)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Apply the numbered migrations not yet applied (``PRAGMA user_version`` counts them).

    The version is read again under the write lock: two connections opening the same file
    at once (the request log and the response store, or two gateway processes) must not
    both apply the same migration. DDL and the version are one transaction in SQLite."""
    if _version(conn) >= len(migrations):
        return  # the usual open: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        for number, script in enumerate(migrations[version:], start=version + 1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """A migration script's statements (``execute`` runs one; ``executescript`` would
    commit the transaction first). A ``;`` inside a literal does not end a statement."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                statements.append(pending)
            pending = ""
    return statements


def connect(path: str | Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=5.0)
        conn.execute("PRAGMA busy_timeout=5000")
        _wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite database {path}: {exc}") from None
    return conn


def _wal(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Switch to WAL. Switching a new file needs it unlocked, and the busy handler does not
    cover that: when another connection is migrating the same new file (the request log and
    the response store opened at once), wait for it."""
    for _ in range(tries - 1):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA journal_mode=WAL")


class _SqlTable:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, counter: str) -> Totals:
        row = self.conn.execute("SELECT spent, held, req FROM counters WHERE name = ?",
                                (counter,)).fetchone()
        return Totals(*row) if row else Totals()

    def add(self, counter: str, delta: Totals, expires_at: float | None) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, spent, held, req, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET spent = spent + excluded.spent, "
            "held = held + excluded.held, req = req + excluded.req, "
            "expires_at = COALESCE(excluded.expires_at, expires_at)",
            (counter, delta.spent, delta.held, delta.requests, expires_at))

    def get_hold(self, token: str) -> Hold | None:
        row = self.conn.execute("SELECT info FROM holds WHERE token = ?", (token,)).fetchone()
        return Hold.loads(row[0]) if row else None

    def put_hold(self, token: str, hold: Hold, expires_at: float) -> None:
        self.conn.execute("INSERT INTO holds (token, info, expires_at) VALUES (?, ?, ?)",
                          (token, hold.dumps(), expires_at))

    def pop_hold(self, token: str) -> Hold | None:
        hold = self.get_hold(token)
        if hold is not None:
            self.conn.execute("DELETE FROM holds WHERE token = ?", (token,))
        return hold

    def renew_hold(self, token: str, expires_at: float) -> None:
        self.conn.execute("UPDATE holds SET expires_at = ? WHERE token = ?", (expires_at, token))

    def mark_settled(self, token: str, now: float) -> bool:
        cur = self.conn.execute("INSERT OR IGNORE INTO settled (token, at) VALUES (?, ?)",
                                (token, now))
        return cur.rowcount == 1

    def expired_holds(self, now: float) -> list[str]:
        self.conn.execute("DELETE FROM settled WHERE at < ?", (now - SETTLED_KEEP_S,))
        self.conn.execute("DELETE FROM counters WHERE expires_at < ?", (now,))
        self.conn.execute("DELETE FROM alerts WHERE expires_at < ?", (now,))
        rows = self.conn.execute("SELECT token FROM holds WHERE expires_at < ?", (now,))
        return [row[0] for row in rows.fetchall()]


class SqliteLedger:
    """Spend ledger in one SQLite file (the embedded default)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        migrate(self._conn, MIGRATIONS)
        self._table = _SqlTable(self._conn)
        self._lock = threading.Lock()

    def _tx(self, work: Callable[[_SqlTable], T]) -> T:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._table)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    async def _run(self, work: Callable[[_SqlTable], T]) -> T:
        try:
            return await asyncio.to_thread(self._tx, work)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"spend ledger {self.path}: {exc}") from None

    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      lease_s: float) -> str | None:
        return await self._run(lambda t: reserve_in(t, token, checks, amount, now, lease_s))

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        await self._run(lambda t: settle_in(t, token, hold, actual, now))

    async def release(self, token: str, hold: Hold, now: float) -> None:
        await self._run(lambda t: release_in(t, token))

    async def renew(self, holds: Sequence[tuple[str, Hold]], expires_at: float) -> None:
        await self._run(lambda t: renew_in(t, [token for token, _ in holds], expires_at))

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        def work(table: _SqlTable) -> list[Totals]:
            purge(table, now)
            return [sum_totals(table, group) for group in counters]
        return await self._run(work)

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        def work(table: _SqlTable) -> bool:
            cur = table.conn.execute(
                "INSERT OR IGNORE INTO alerts (key, expires_at) VALUES (?, ?)", (key, expires_at))
            return cur.rowcount == 1
        return await self._run(work)

    async def aclose(self) -> None:
        with self._lock:
            self._conn.close()
