"""Deployment health shared by the worker processes of one ``pointsman serve --workers N``
when no Redis is configured: the :class:`~pointsman.health.HealthStore` of
:class:`~pointsman.health.MemoryHealth`, with the breakers' *state* in a SQLite file of the
server's run directory.

What is shared, and what is not, and why: a success on a closed breaker (nearly every
request) touches nothing shared, so sharing costs nothing on the request's path. Each
worker counts its own outcomes (error rate over ``window_s``, failures in a row); when its
count trips the breaker, the trip (``open_until``) is written to the file, and so is a
Retry-After block. Every worker reads the whole table at most every ``cache_s`` (one
SELECT), so a cooldown opened by one worker is seen by the others within ``cache_s``
(0.25 s by default). The half-open probe is claimed in a write transaction: one worker
sends it. Its result (the first report on a tripped breaker, from any worker) closes or
reopens the breaker for all. Times are wall-clock seconds (one host).

A failure the file cannot record (the disk, a lock held past the busy timeout) is logged
and the worker goes on with what it has: health is an optimisation, never a reason to
fail a request.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pointsman.budget.sqlite_ledger import connect, migrate
from pointsman.gateway.config import HealthConfig

log = logging.getLogger("pointsman.health")

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE breakers (deployment TEXT PRIMARY KEY, tripped INTEGER NOT NULL DEFAULT 0,
         open_until REAL NOT NULL DEFAULT 0, probing_until REAL NOT NULL DEFAULT 0,
         blocked_until REAL NOT NULL DEFAULT 0);""",
)
_SELECT = "SELECT deployment, tripped, open_until, probing_until, blocked_until FROM breakers"
Row = tuple[int, float, float, float]  # tripped, open_until, probing_until, blocked_until
_CLOSED: Row = (0, 0.0, 0.0, 0.0)


@dataclass(slots=True)
class _Counts:
    """This worker's own outcomes of one deployment (while its breaker is closed)."""

    events: deque[tuple[float, bool]] = field(default_factory=deque)
    failures: int = 0
    consecutive: int = 0


def _open(row: Row, now: float) -> bool:
    """Whether a breaker row lets a request through (no probe claimed)."""
    tripped, open_until, probing_until, blocked_until = row
    if now < blocked_until:
        return False
    return not tripped or (now >= open_until and now >= probing_until)


class SharedFileHealth:
    """The :class:`~pointsman.health.HealthStore` of a server's worker processes (see the
    module's docstring), in the SQLite file ``path``."""

    def __init__(self, path: Path, cfg: HealthConfig, *, cache_s: float = 0.25,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.cfg = cfg
        self.cache_s = cache_s
        self.clock = clock
        self._conn = connect(path)
        migrate(self._conn, MIGRATIONS)
        self._view: dict[str, Row] = {}
        self._read_at = -math.inf
        self._counts: dict[str, _Counts] = {}

    def _refresh(self, now: float) -> None:
        if now - self._read_at < self.cache_s:
            return
        try:
            rows = self._conn.execute(_SELECT).fetchall()
        except sqlite3.Error as exc:
            log.warning("health: %s unreadable, last view kept: %s", self.path, exc)
            return
        self._view = {r[0]: (int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows}
        self._read_at = now

    def state(self, deployment: str) -> str:
        """``closed``, ``open``, ``half_open`` or ``blocked``, for reports."""
        now = self.clock()
        self._refresh(now)
        tripped, open_until, _, blocked_until = self._view.get(deployment, _CLOSED)
        if tripped:
            return "open" if now < open_until else "half_open"
        return "blocked" if now < blocked_until else "closed"

    async def available(self, deployment: str) -> bool:
        now = self.clock()
        self._refresh(now)
        row = self._view.get(deployment)
        return row is None or _open(row, now)

    async def acquire(self, deployment: str) -> bool:
        if not await self.available(deployment):
            return False
        if not self._view.get(deployment, _CLOSED)[0]:
            return True
        return self._write(deployment, self._claim_probe, True)

    async def report(self, deployment: str, ok: bool, retry_after: float | None = None
                     ) -> None:
        now = self.clock()
        self._refresh(now)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            self._write(deployment, lambda row, t: self._block(row, t, retry_after), None)
        if self._view.get(deployment, _CLOSED)[0]:  # tripped: this is the probe's answer
            self._counts.pop(deployment, None)
            self._write(deployment, lambda row, t: self._after_probe(row, t, ok), None)
            return
        if self._count(deployment, ok, now):
            self._counts.pop(deployment, None)
            self._write(deployment, self._trip, None)

    # -- this worker's counts -------------------------------------------------------------
    def _count(self, deployment: str, ok: bool, now: float) -> bool:
        """Count an outcome; whether the breaker should now open."""
        c = self._counts.get(deployment)
        if c is None:
            if ok:
                return False  # nothing to count against: keep the common case free
            c = self._counts[deployment] = _Counts()
        c.events.append((now, ok))
        c.failures += not ok
        c.consecutive = 0 if ok else c.consecutive + 1
        horizon = now - self.cfg.window_s
        while c.events and c.events[0][0] < horizon:
            c.failures -= not c.events.popleft()[1]
        if not c.failures:
            self._counts.pop(deployment, None)
            return False
        n, cfg = len(c.events), self.cfg
        return c.consecutive >= cfg.consecutive_failures or (
            n >= cfg.min_requests and c.failures / n >= cfg.error_rate)

    # -- writes (one transaction each; rare: trips, probes, blocks) -------------------------
    def _write(self, deployment: str,
               change: Callable[[Row, float],
                                tuple[Row, bool]],
               failed: bool | None) -> bool:
        """Read the deployment's row under the write lock, apply ``change`` (→ new row,
        result), store it; ``failed`` is the result when the file cannot be written."""
        conn, now = self._conn, self.clock()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(_SELECT + " WHERE deployment = ?", (deployment,)).fetchone()
                row: Row = ((int(found[1]), float(found[2]), float(found[3]), float(found[4]))
                            if found else _CLOSED)
                new, result = change(row, now)
                conn.execute("INSERT OR REPLACE INTO breakers VALUES (?, ?, ?, ?, ?)",
                             (deployment, *new))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("health: %s not written (%s): %s", self.path, deployment, exc)
            return bool(failed)
        self._view[deployment] = new
        return result

    def _claim_probe(self, row: Row, now: float
                     ) -> tuple[Row, bool]:
        if not _open(row, now):
            return row, False
        if row[0]:
            return (row[0], row[1], now + max(self.cfg.cooldown_s, 1.0), row[3]), True
        return row, True

    def _after_probe(self, row: Row, now: float, ok: bool
                     ) -> tuple[Row, bool]:
        if not row[0]:
            return row, True  # another worker's probe closed it already
        if ok:
            return (0, 0.0, 0.0, row[3]), True
        return (1, now + self.cfg.cooldown_s, 0.0, row[3]), True

    def _trip(self, row: Row, now: float
              ) -> tuple[Row, bool]:
        if row[0]:
            return row, True  # another worker tripped it first
        return (1, now + self.cfg.cooldown_s, 0.0, row[3]), True

    @staticmethod
    def _block(row: Row, now: float, wait: float
               ) -> tuple[Row, bool]:
        return (row[0], row[1], row[2], max(row[3], now + wait)), True

    async def aclose(self) -> None:
        self._conn.close()
