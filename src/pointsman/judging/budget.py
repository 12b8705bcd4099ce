"""The judging budget: a hard cap per UTC day on what judged samples spend, kept apart from
every user budget (a :class:`~pointsman.state.BudgetGuard` for the judging executor only).

Each reference or judge call reserves its worst case (its ``max_tokens`` of output and a
margin over the estimated input) before it is made and is refused when spent + held + that
would pass the cap; it settles at its actual cost. Amounts are integer nano-dollars. The
check and the hold happen with no ``await`` between them, so concurrent samples on one
event loop cannot overspend. The cap is per gateway process (with ``serve --workers N`` or
replicas, each process has the whole cap); at start-up the day's spend is read back from
the stored judge labels, so a restart does not reset it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from pointsman.budget.ledger import to_nanos, to_usd
from pointsman.errors import BudgetExceededError
from pointsman.state import Reservation
from pointsman.types import RouteRequest

DAY_S = 86_400
BUDGET = "judging:day"


def day_start(now: float) -> float:
    return now - now % DAY_S


class JudgingBudget:
    def __init__(self, cap_usd: float, clock: Callable[[], float] = time.time) -> None:
        self.cap = to_nanos(cap_usd)
        self.clock = clock
        self.day = day_start(clock())
        self.spent = 0
        self.held = 0
        self.refusals = 0
        self._holds: dict[str, int] = {}
        self._tokens = itertools.count()

    def _roll(self) -> None:
        today = day_start(self.clock())
        if today != self.day:
            self.day, self.spent = today, 0

    def seed(self, spent_usd: float) -> None:
        """Today's spend before this process started (read from the stored labels)."""
        self._roll()
        self.spent += to_nanos(spent_usd)

    def fits(self, usd: float) -> bool:
        self._roll()
        return self.spent + self.held + to_nanos(usd) <= self.cap

    def refuse(self) -> BudgetExceededError:
        self.refusals += 1
        return BudgetExceededError(
            f"the judging budget of ${to_usd(self.cap):g} a day is spent "
            f"(${to_usd(self.spent):.6f} spent, ${to_usd(self.held):.6f} held)", BUDGET)

    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float
                      ) -> Reservation:
        if not self.fits(estimated_usd):
            raise self.refuse()
        amount = to_nanos(estimated_usd)
        token = f"judge-{next(self._tokens)}"
        self._holds[token] = amount
        self.held += amount
        return Reservation(token, estimated_usd, (BUDGET,))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        self._drop(reservation)
        self._roll()
        self.spent += to_nanos(actual_usd)

    async def release(self, reservation: Reservation) -> None:
        self._drop(reservation)

    def _drop(self, reservation: Reservation) -> None:
        self.held -= self._holds.pop(reservation.token, 0)

    @property
    def spent_usd(self) -> float:
        self._roll()
        return to_usd(self.spent)
