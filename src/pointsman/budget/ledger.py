"""The spend ledger: one Protocol, the shared bookkeeping rules, the in-memory ledger.

Amounts are integer nano-dollars (1e-9 USD), so sums are exact in every store (Redis
and Lua included) and the ledger can equal the sum of logged costs to the last unit.

Each counter holds ``spent`` (settled), ``held`` (live reservations) and ``req``
(requests counted against request limits). ``reserve`` checks every budget that
applies and, only if all pass, holds the amount on each, all in one atomic step;
``settle`` moves a hold to ``spent`` with the actual amount; ``release`` drops it.

Reservations are leases: a hold lives ``lease_s`` seconds unless its process renews it
(:meth:`SpendLedger.renew`, batched by :class:`~pointsman.budget.leases.Leases`), so the
holds of a killed process are freed within one lease. A settle that arrives after its
lease ran out still records the actual spend.

Every write is keyed by the reservation's token and idempotent: a reserve or settle that
timed out on the client yet ran, then is retried or replayed by the guard's
reconciliation, holds or charges once (settled tokens are remembered for a day).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

NANOS = 1_000_000_000
SETTLED_KEEP_S = 24 * 3600  # how long a settled token is remembered (retries dedup)


def to_nanos(usd: float) -> int:
    return round(usd * NANOS)


def to_usd(nanos: int) -> float:
    return nanos / NANOS


@dataclass(frozen=True, slots=True)
class Check:
    """One budget a call must fit: the counters it sums and the one it charges."""

    budget: str
    charge: str
    counters: tuple[str, ...]
    limit_nanos: int | None
    limit_requests: int | None
    counts_request: bool
    expires_at: float


@dataclass(frozen=True, slots=True)
class Totals:
    spent: int = 0
    held: int = 0
    requests: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.spent + other.spent, self.held + other.held,
                      self.requests + other.requests)


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation as stored: its amount and the counters it charged."""

    amount: int
    charges: tuple[tuple[str, bool], ...]  # (counter, counts_request)

    def dumps(self) -> str:
        return json.dumps({"a": self.amount, "c": [[c, int(r)] for c, r in self.charges]})

    @staticmethod
    def loads(text: str) -> Hold:
        data = json.loads(text)
        return Hold(int(data["a"]), tuple((str(c), bool(r)) for c, r in data["c"]))


def hold_for(checks: Sequence[Check], amount: int) -> Hold:
    return Hold(amount, tuple((c.charge, c.counts_request) for c in checks))


def refusal(checks: Sequence[Check], totals: Sequence[Totals], amount: int) -> str | None:
    """The first budget the call would break, or None when all of them allow it."""
    for check, total in zip(checks, totals, strict=True):
        if check.limit_nanos is not None and total.spent + total.held + amount > \
                check.limit_nanos:
            return check.budget
        if check.counts_request and check.limit_requests is not None and \
                total.requests + 1 > check.limit_requests:
            return check.budget
    return None


@runtime_checkable
class SpendLedger(Protocol):
    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      lease_s: float) -> str | None:
        """Hold ``amount`` on every check's counter atomically for a lease of ``lease_s``;
        the refusing budget or None. A token already holding is not held twice."""
        ...

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        """Replace the hold by ``actual`` spent (records it even if the lease ran out);
        a token already settled is not charged again."""
        ...

    async def release(self, token: str, hold: Hold, now: float) -> None:
        """Drop the hold (nothing when it is gone already)."""
        ...

    async def renew(self, holds: Sequence[tuple[str, Hold]], expires_at: float) -> None:
        """Extend the leases of these live holds to ``expires_at`` (gone ones stay gone)."""
        ...

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        """For each group of counters, their summed totals."""
        ...

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        """Record that alert ``key`` fired; False when it had already fired."""
        ...

    async def aclose(self) -> None: ...


class CounterTable(Protocol):
    """The storage the shared rules run on (a dict, or SQLite inside a transaction)."""

    def get(self, counter: str) -> Totals: ...
    def add(self, counter: str, delta: Totals, expires_at: float | None) -> None: ...
    def get_hold(self, token: str) -> Hold | None: ...
    def put_hold(self, token: str, hold: Hold, expires_at: float) -> None: ...
    def pop_hold(self, token: str) -> Hold | None: ...
    def renew_hold(self, token: str, expires_at: float) -> None: ...
    def mark_settled(self, token: str, now: float) -> bool: ...
    def expired_holds(self, now: float) -> list[str]: ...


def purge(table: CounterTable, now: float) -> None:
    for token in table.expired_holds(now):
        _drop(table, token)


def _drop(table: CounterTable, token: str) -> bool:
    hold = table.pop_hold(token)
    if hold is None:
        return False
    for counter, counts in hold.charges:
        table.add(counter, Totals(0, -hold.amount, -int(counts)), None)
    return True


def sum_totals(table: CounterTable, counters: Sequence[str]) -> Totals:
    total = Totals()
    for counter in counters:
        total = total + table.get(counter)
    return total


def reserve_in(table: CounterTable, token: str, checks: Sequence[Check], amount: int,
               now: float, lease_s: float) -> str | None:
    purge(table, now)
    if table.get_hold(token) is not None:
        return None  # a retried reserve that already ran
    refused = refusal(checks, [sum_totals(table, c.counters) for c in checks], amount)
    if refused is not None:
        return refused
    for check in checks:
        table.add(check.charge, Totals(0, amount, int(check.counts_request)), check.expires_at)
    table.put_hold(token, hold_for(checks, amount), now + lease_s)
    return None


def settle_in(table: CounterTable, token: str, hold: Hold, actual: int, now: float) -> None:
    if not table.mark_settled(token, now):
        return  # settled before: a retry or a replay charges once
    _drop(table, token)  # returns the held amount and request, live or already expired
    for counter, counts in hold.charges:
        table.add(counter, Totals(actual, 0, int(counts)), None)


def release_in(table: CounterTable, token: str) -> None:
    _drop(table, token)


def renew_in(table: CounterTable, tokens: Sequence[str], expires_at: float) -> None:
    for token in tokens:
        table.renew_hold(token, expires_at)


class _DictTable:
    def __init__(self) -> None:
        self.counters: dict[str, Totals] = {}
        self.expiry: dict[str, float] = {}
        self.holds: dict[str, tuple[Hold, float]] = {}
        self.settled: dict[str, float] = {}

    def get(self, counter: str) -> Totals:
        return self.counters.get(counter, Totals())

    def add(self, counter: str, delta: Totals, expires_at: float | None) -> None:
        self.counters[counter] = self.get(counter) + delta
        if expires_at is not None:
            self.expiry[counter] = expires_at

    def get_hold(self, token: str) -> Hold | None:
        entry = self.holds.get(token)
        return entry[0] if entry else None

    def put_hold(self, token: str, hold: Hold, expires_at: float) -> None:
        self.holds[token] = (hold, expires_at)

    def pop_hold(self, token: str) -> Hold | None:
        entry = self.holds.pop(token, None)
        return entry[0] if entry else None

    def renew_hold(self, token: str, expires_at: float) -> None:
        entry = self.holds.get(token)
        if entry is not None:
            self.holds[token] = (entry[0], expires_at)

    def mark_settled(self, token: str, now: float) -> bool:
        if token in self.settled:
            return False
        self.settled[token] = now
        return True

    def expired_holds(self, now: float) -> list[str]:
        for token in [t for t, at in self.settled.items() if at < now - SETTLED_KEEP_S]:
            del self.settled[token]
        gone = [c for c, t in self.expiry.items() if t < now]
        for counter in gone:
            self.counters.pop(counter, None)
            self.expiry.pop(counter, None)
        return [token for token, (_, exp) in self.holds.items() if exp < now]


class MemoryLedger:
    """A single-process ledger (tests, one-off runs). Each method runs without awaiting,
    so it is atomic with respect to the other tasks of the event loop."""

    def __init__(self) -> None:
        self._table = _DictTable()
        self._alerts: dict[str, float] = {}

    async def reserve(self, token: str, checks: Sequence[Check], amount: int, now: float,
                      lease_s: float) -> str | None:
        return reserve_in(self._table, token, checks, amount, now, lease_s)

    async def settle(self, token: str, hold: Hold, actual: int, now: float) -> None:
        settle_in(self._table, token, hold, actual, now)

    async def release(self, token: str, hold: Hold, now: float) -> None:
        release_in(self._table, token)

    async def renew(self, holds: Sequence[tuple[str, Hold]], expires_at: float) -> None:
        renew_in(self._table, [token for token, _ in holds], expires_at)

    async def totals(self, counters: Sequence[Sequence[str]], now: float) -> list[Totals]:
        purge(self._table, now)
        return [sum_totals(self._table, group) for group in counters]

    async def mark_alert(self, key: str, expires_at: float) -> bool:
        if key in self._alerts:
            return False
        self._alerts[key] = expires_at
        return True

    async def aclose(self) -> None:
        return None
