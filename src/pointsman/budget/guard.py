"""The budget guard: reserve / settle / release against a spend ledger, and the live budget
view the router reads (:class:`~pointsman.state.BudgetGuard` and
:class:`~pointsman.state.StateSource` in one object).

Fail-open (``on_store_error: fail_open``): when the ledger cannot be reached, requests
are served unchecked and a loud error is logged for each; the guard keeps, in process
memory, the hold (counters) and the actual cost of every such request, and when the
ledger answers again it charges each of them (``spent += actual``, ``requests += 1``
where counted) to the counters of the window in which it was served, exactly once (see
:mod:`pointsman.budget.reconcile`). Not covered: the limits are not enforced during the
outage, and a process that exits before the ledger returns loses its unreconciled list
(it is logged at each failure). Fail-closed: the
:class:`~pointsman.errors.StoreUnavailableError` goes up (HTTP 503). In both modes a
settle or release that fails is queued for the same replay, and no store error ever
escapes a settle or a release (the request was served: it must not become a 500).

Holds are leases renewed by :class:`~pointsman.budget.leases.Leases` while their request
runs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pointsman.budget import windows
from pointsman.budget.alerts import Alerter
from pointsman.budget.config import BudgetLimit, BudgetsConfig
from pointsman.budget.leases import Leases
from pointsman.budget.ledger import Check, Hold, SpendLedger, Totals, hold_for, to_nanos, to_usd
from pointsman.budget.plans import plan_name, resolve_plan, usd
from pointsman.budget.reconcile import Pending, Reconciler
from pointsman.errors import BudgetExceededError, PermissionDeniedError, StoreUnavailableError
from pointsman.state import Reservation
from pointsman.types import BudgetView, LiveState, RouteRequest

log = logging.getLogger("pointsman.budget")


@dataclass(frozen=True, slots=True)
class Applied:
    """One budget that applies to a request, with its window now."""

    limit: BudgetLimit
    check: Check
    span: windows.WindowSpan


def subject_of(limit: BudgetLimit, metadata: Mapping[str, Any]) -> str | None:
    if limit.scope == "global":
        return "all"
    value = metadata.get(limit.scope)
    if value is None or (limit.subject != "*" and str(value) != limit.subject):
        return None
    return str(value)


class LedgerBudgetGuard:
    def __init__(self, cfg: BudgetsConfig, ledger: SpendLedger, tiers: Mapping[str, str],
                 clock: Callable[[], float] = time.time, alerter: Alerter | None = None) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.tiers = dict(tiers)
        self.clock = clock
        self.zone = ZoneInfo(cfg.timezone)
        self.alerter = alerter
        self._holds: dict[str, tuple[Hold, tuple[Applied, ...]]] = {}
        self.reconciler = Reconciler(ledger, clock)
        self.leases = Leases(ledger, cfg.lease_s, cfg.hold_ttl_s, clock,
                             on_tick=self._tick)

    # -- which budgets apply ------------------------------------------------------------
    def applicable(self, request: RouteRequest, model: str | None = None) -> list[Applied]:
        plan = resolve_plan(self.cfg, request.metadata)
        limits = [*self.cfg.limits, *(plan.budgets if plan else [])]
        tier = self.tiers.get(model or "", "")
        now = self.clock()
        out: dict[str, Applied] = {}
        for limit in limits:
            subject = subject_of(limit, request.metadata)
            if subject is None:
                continue
            applied = self._applied(limit, subject, tier, now)
            if applied.check.charge not in out:  # the same budget listed twice counts once
                out[applied.check.charge] = applied
        return list(out.values())

    def _applied(self, limit: BudgetLimit, subject: str, tier: str, now: float) -> Applied:
        span = windows.span(limit.window, limit.seconds, now, self.zone)
        base = f"{limit.scope}:{subject}"
        check = Check(
            budget=f"{base}/{span.label}", charge=f"{base}:{span.charge}",
            counters=tuple(f"{base}:{c}" for c in span.counters),
            limit_nanos=None if limit.limit_usd is None else to_nanos(limit.limit_usd),
            limit_requests=limit.limit_requests,
            counts_request=limit.limit_requests is not None and tier in limit.requests_tiers,
            expires_at=span.expires_at)
        return Applied(limit, check, span)

    # -- BudgetGuard --------------------------------------------------------------------
    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float
                      ) -> Reservation:
        self._check_plan(request, model)
        applied = tuple(self.applicable(request, model))
        token = uuid.uuid4().hex
        amount = to_nanos(estimated_usd * self.cfg.cost_margin)
        checks = [a.check for a in applied]
        if not checks:
            return Reservation(token, to_usd(amount), ())
        try:
            refused = await self.ledger.reserve(token, checks, amount, self.clock(),
                                                self.cfg.lease_s)
        except StoreUnavailableError as exc:
            return self._unchecked(exc, token, checks, amount, applied)
        if refused is None:  # known (renewed, released) before anything else can fail
            hold = hold_for(checks, amount)
            self._holds[token] = (hold, applied)
            self.leases.add(token, hold)
        await self._reconcile()
        if refused is not None:
            raise await self._exceeded(refused, applied)
        return Reservation(token, to_usd(amount), tuple(c.budget for c in checks))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        entry = self._holds.pop(reservation.token, None)
        self.leases.drop(reservation.token)
        if entry is None:
            return
        hold, applied = entry
        actual = to_nanos(actual_usd)
        try:
            await self.ledger.settle(reservation.token, hold, actual, self.clock())
        except StoreUnavailableError as exc:
            self._keep_unreconciled(exc, reservation.token, hold, actual)
            return
        await self._reconcile()
        if self.alerter is not None:
            await self._alert(applied)

    async def release(self, reservation: Reservation) -> None:
        entry = self._holds.pop(reservation.token, None)
        self.leases.drop(reservation.token)
        if entry is None or reservation.token.startswith("unchecked:"):
            return
        try:
            await self.ledger.release(reservation.token, entry[0], self.clock())
        except StoreUnavailableError as exc:  # replayed later; the lease lapses meanwhile
            log.error("budget release failed (retried when the ledger answers; the hold "
                      "lapses within %ss): %s", self.cfg.lease_s, exc.message)
            self.reconciler.add(Pending(reservation.token, entry[0], None))

    # -- StateSource --------------------------------------------------------------------
    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        applied = self.applicable(request, "")
        if not applied:
            return state
        try:
            totals = await self.ledger.totals([a.check.counters for a in applied], self.clock())
        except StoreUnavailableError as exc:
            if self.cfg.on_store_error == "fail_closed":
                raise
            log.error("BUDGET LEDGER UNAVAILABLE, routing without budget state: %s",
                      exc.message)
            return state
        return state.replace(budget=self.view(applied, totals))

    def view(self, applied: Sequence[Applied], totals: Sequence[Totals]) -> BudgetView:
        """The tightest USD budget, with the fewest premium requests left of any budget."""
        premium_left: int | None = None
        best: BudgetView | None = None
        for a, total in zip(applied, totals, strict=True):
            limit = a.limit
            if limit.limit_requests is not None and "premium" in limit.requests_tiers:
                left = max(0, limit.limit_requests - total.requests)
                premium_left = left if premium_left is None else min(premium_left, left)
            if limit.limit_usd is None:
                continue
            candidate = BudgetView(a.check.budget, limit.limit_usd,
                                   to_usd(total.spent + total.held),
                                   windows.iso(a.span.resets_at, self.zone))
            if best is None or candidate.remaining_usd < best.remaining_usd:
                best = candidate
        if best is None:
            best = BudgetView(applied[0].check.budget, math.inf, 0.0,
                              windows.iso(applied[0].span.resets_at, self.zone))
        return dataclasses.replace(best, premium_requests_left=premium_left)

    # -- helpers ------------------------------------------------------------------------
    def _check_plan(self, request: RouteRequest, model: str) -> None:
        plan = resolve_plan(self.cfg, request.metadata)
        if plan is None:
            return
        tier = self.tiers.get(model, "")
        if tier not in plan.tiers or (plan.models is not None and model not in plan.models):
            name = plan_name(self.cfg, request.metadata)
            raise PermissionDeniedError(f"model {model!r} (tier {tier}) is not in plan {name!r}")

    async def _exceeded(self, budget: str, applied: Sequence[Applied]) -> BudgetExceededError:
        match = next(a for a in applied if a.check.budget == budget)
        resets = windows.iso(match.span.resets_at, self.zone)
        limit = match.limit
        caps = " and ".join(part for part in (
            usd(limit.limit_usd) if limit.limit_usd is not None else "",
            f"{limit.limit_requests} {'/'.join(limit.requests_tiers)} requests"
            if limit.limit_requests is not None else "") if part)
        return BudgetExceededError(
            f"budget {budget} ({caps}) is exhausted; it resets at {resets}",
            budget, resets, self.cfg.exceeded_status)

    def _unchecked(self, exc: StoreUnavailableError, token: str, checks: Sequence[Check],
                   amount: int, applied: tuple[Applied, ...]) -> Reservation:
        # the reserve may have run although the client saw it fail: release it on recovery
        self.reconciler.add(Pending(token, hold_for(checks, amount), None))
        self.leases.start()
        if self.cfg.on_store_error == "fail_closed":
            raise exc
        log.error("BUDGET LEDGER UNAVAILABLE, serving WITHOUT a budget check (fail_open); "
                  "the cost will be charged when the ledger returns: %s", exc.message)
        token = f"unchecked:{token}"
        self._holds[token] = (hold_for(checks, amount), applied)
        return Reservation(token, to_usd(amount), tuple(c.budget for c in checks))

    def _keep_unreconciled(self, exc: StoreUnavailableError, token: str, hold: Hold,
                           actual: int) -> None:
        if self.cfg.on_store_error == "fail_closed" and not token.startswith("unchecked:"):
            log.error("budget settle failed; charging %d nano-USD when the ledger returns: %s",
                      actual, exc.message)
        else:
            log.error("BUDGET LEDGER UNAVAILABLE: %d unreconciled charges kept in memory: %s",
                      len(self.reconciler) + 1, exc.message)
        self.reconciler.add(Pending(token, hold, actual))
        self.leases.start()  # its ticks replay the queue even if no request comes

    async def _reconcile(self) -> None:
        """Replay what the ledger owes (single-flight, never raises)."""
        await self.reconciler.run()

    async def _tick(self) -> bool:
        """The lease task's tick: replay what is owed; whether anything is still owed."""
        await self.reconciler.run()
        return len(self.reconciler) > 0

    async def reconcile(self) -> int:
        """Replay now; how many entries were replayed (tests, shutdown)."""
        return await self.reconciler.run()

    @property
    def unreconciled(self) -> int:
        return len(self.reconciler)

    async def _alert(self, applied: Sequence[Applied]) -> None:
        assert self.alerter is not None
        try:
            totals = await self.ledger.totals([a.check.counters for a in applied], self.clock())
            for a, total in zip(applied, totals, strict=True):
                if a.limit.limit_usd is not None:
                    await self.alerter.check(a.check, a.limit.limit_usd, total, a.span)
        except StoreUnavailableError as exc:  # alerts are best effort; the charge is made
            log.error("budget alert check skipped: %s", exc.message)

    async def aclose(self) -> None:
        await self.leases.aclose()
        await self.reconciler.run()
        if self.alerter is not None:
            await self.alerter.aclose()
        await self.ledger.aclose()
