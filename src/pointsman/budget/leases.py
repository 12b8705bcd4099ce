"""Reservations are leases: one renewal task per process extends, in one batched ledger
call, the lease of every hold its requests still run on.

A hold lives ``lease_s`` seconds in the ledger unless renewed. While its request runs,
the task renews it every ``lease_s / 3`` seconds; when the process dies (SIGKILL, OOM,
a lost host) the renewals stop and every replica sees its holds gone within one lease,
instead of budget frozen for the whole request timeout. A hold is renewed for at most
``max_age_s`` (a wedged request does not hold budget forever); a settle after its lease
ran out still records the actual spend. No timer per request: the one task sleeps while
there is nothing to renew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pointsman.budget.ledger import Hold, SpendLedger
from pointsman.errors import StoreUnavailableError

log = logging.getLogger("pointsman.budget")


class Leases:
    """The live holds of this process and the task that renews their leases."""

    def __init__(self, ledger: SpendLedger, lease_s: float, max_age_s: float,
                 clock: Callable[[], float] = time.time,
                 on_tick: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.ledger = ledger
        self.lease_s = lease_s
        self.max_age_s = max_age_s
        self.clock = clock
        self.on_tick = on_tick
        self.live: dict[str, tuple[Hold, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, token: str, hold: Hold) -> None:
        self.live[token] = (hold, self.clock())
        self.start()

    def drop(self, token: str) -> None:
        self.live.pop(token, None)

    def start(self) -> None:
        """Start the renewal task if it is not running (it ends when idle)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def renew(self) -> int:
        """Renew every live hold younger than ``max_age_s`` in one ledger call; how many."""
        now = self.clock()
        batch = [(token, hold) for token, (hold, since) in self.live.items()
                 if now - since < self.max_age_s]
        if not batch:
            return 0
        try:
            await self.ledger.renew(batch, now + self.lease_s)
        except StoreUnavailableError as exc:
            log.error("budget lease renewal failed (%d holds; they lapse after %ss "
                      "unless renewed in time): %s", len(batch), self.lease_s, exc.message)
            return 0
        return len(batch)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.renew()
            more = await self.on_tick() if self.on_tick is not None else False
            if not self.live and not more:
                return

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
