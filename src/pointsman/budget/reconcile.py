"""Charges and releases the ledger could not take, replayed once it answers again.

Keyed by reservation token (a settle and a release of one token are one entry; a second
failure of the same token replaces it) and replayed by one task at a time: a caller that
finds a replay under way goes on without waiting. The ledger's settle is idempotent per
token, so a settle that ran although the client saw it fail is charged once however
often it is replayed. Nothing here raises: a replay that fails stays queued, and an
unexpected error is logged, never turned into a request's 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pointsman.budget.ledger import Hold, SpendLedger
from pointsman.errors import StoreUnavailableError

log = logging.getLogger("pointsman.budget")


@dataclass(frozen=True, slots=True)
class Pending:
    """A settle (``actual`` nano-USD) or, with ``actual`` None, a release still owed."""

    token: str
    hold: Hold
    actual: int | None


class Reconciler:
    def __init__(self, ledger: SpendLedger, clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.clock = clock
        self._pending: dict[str, Pending] = {}
        self._lock = asyncio.Lock()

    def add(self, entry: Pending) -> None:
        current = self._pending.get(entry.token)
        if current is not None and current.actual is not None and entry.actual is None:
            return  # a charge owed outranks a release of the same token
        self._pending[entry.token] = entry

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self) -> int:
        """Replay what is owed, oldest first, until the ledger fails; how many replayed."""
        if not self._pending or self._lock.locked():
            return 0
        done = 0
        async with self._lock:
            for token, entry in list(self._pending.items()):
                try:
                    await self._replay(entry)
                except StoreUnavailableError:
                    break
                except Exception:
                    log.exception("budget reconciliation of %s failed", token)
                    break
                if self._pending.get(token) is entry:
                    del self._pending[token]
                done += 1
        return done

    async def _replay(self, entry: Pending) -> None:
        if entry.actual is None:
            await self.ledger.release(entry.token, entry.hold, self.clock())
            log.warning("budget ledger reconciled: released %s", entry.token)
            return
        await self.ledger.settle(entry.token, entry.hold, entry.actual, self.clock())
        log.warning("budget ledger reconciled: charged %d nano-USD for %s",
                    entry.actual, entry.token)
