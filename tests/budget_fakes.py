"""A spend ledger that fails on demand, wrapping a real one (memory, SQLite, Redis).

A fault either stops a call before it reaches the store (``before``: the store never saw
it) or lets it run and then raises (``after``: the client timed out although the store
did the work), the two ways a store outage looks to the guard. Every call yields to the
event loop first, so concurrent callers interleave as they would on a network store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pointsman.budget.ledger import Check, Hold, SpendLedger, Totals
from pointsman.errors import StoreUnavailableError

T = TypeVar("T")


class FaultyLedger:
    def __init__(self, inner: SpendLedger, rng: random.Random | None = None,
                 rate: float = 0.0) -> None:
        self.inner = inner
        self.rng = rng or random.Random(0)
        self.rate = rate  # the share of calls that fail (half before, half after)
        self.down = False  # every call fails before reaching the store
        self.fail_ops: set[str] = set()  # these operations always fail before
        self.fail_after_ops: set[str] = set()  # these always run, then fail
        self.calls: list[str] = []

    async def _do(self, op: str, work: Callable[[], Awaitable[T]]) -> T:
        self.calls.append(op)
        await asyncio.sleep(0)
        if self.down or op in self.fail_ops:
            raise StoreUnavailableError(f"injected: {op} before")
        roll = self.rng.random() if self.rate else 1.0
        if roll < self.rate / 2:
            raise StoreUnavailableError(f"injected: {op} before")
        result = await work()
        await asyncio.sleep(0)
        if roll < self.rate or op in self.fail_after_ops:
            raise StoreUnavailableError(f"injected: {op} after it ran")
        return result

    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      lease_s: float) -> str | None:
        return await self._do("reserve", lambda: self.inner.reserve(
            token, checks, amount, now, lease_s))

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        await self._do("settle", lambda: self.inner.settle(token, hold, actual, now))

    async def release(self, token: str, hold: Hold, now: float) -> None:
        await self._do("release", lambda: self.inner.release(token, hold, now))

    async def renew(self, holds: Sequence[tuple[str, Hold]], expires_at: float) -> None:
        await self._do("renew", lambda: self.inner.renew(holds, expires_at))

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        return await self._do("totals", lambda: self.inner.totals(counters, now))

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        return await self._do("mark_alert", lambda: self.inner.mark_alert(key, expires_at))

    async def aclose(self) -> None:
        await self.inner.aclose()
