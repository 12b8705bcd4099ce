"""Deployment health: a circuit breaker per deployment, and the cooldown view for routing.

Each deployment keeps its outcomes over a sliding window and its run of consecutive
failures. Past the configured error rate (with at least ``min_requests`` in the window)
or after ``consecutive_failures`` failures in a row, the deployment is *open* (cooling
down) for ``cooldown_s``. After that it is *half-open*: one request (the probe) is let
through; its success closes the breaker, its failure opens it again. A 429's
``Retry-After`` blocks the deployment until then without counting as a failure.

A model whose every deployment is unavailable appears in ``LiveState.cooling_down``
(:class:`CooldownSource`), so routing skips it. State lives behind the small
:class:`HealthStore` Protocol; :class:`MemoryHealth` keeps it in process memory.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pointsman.gateway.config import HealthConfig
from pointsman.state import AttemptOutcome
from pointsman.types import LiveState, RouteRequest

# Error codes that say nothing about a deployment's health (the caller's fault, a budget).
NEUTRAL_CODES = frozenset({"upstream_rejected", "budget_exceeded", "permission_denied"})
RATE_LIMITED = "upstream_rate_limited"


@runtime_checkable
class HealthStore(Protocol):
    """Per-deployment availability. ``available`` only looks; ``acquire`` takes the
    half-open probe slot when there is one."""

    async def available(self, deployment: str) -> bool: ...

    async def acquire(self, deployment: str) -> bool: ...

    async def report(self, deployment: str, ok: bool, retry_after: float | None = None
                     ) -> None: ...


@dataclass(slots=True)
class _Breaker:
    events: deque[tuple[float, bool]] = field(default_factory=deque)
    failures: int = 0
    consecutive: int = 0
    open_until: float = 0.0
    tripped: bool = False
    probing_until: float = 0.0
    blocked_until: float = 0.0


class MemoryHealth:
    """The in-process :class:`HealthStore` (one gateway process)."""

    def __init__(self, cfg: HealthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _get(self, deployment: str) -> _Breaker:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            breaker = self._breakers[deployment] = _Breaker()
        return breaker

    def state(self, deployment: str) -> str:
        """``closed``, ``open``, ``half_open`` or ``blocked`` (Retry-After), for reports."""
        b, now = self._breakers.get(deployment), self.clock()
        if b is None:
            return "closed"
        if b.tripped:
            return "open" if now < b.open_until else "half_open"
        return "blocked" if now < b.blocked_until else "closed"

    async def available(self, deployment: str) -> bool:
        b = self._breakers.get(deployment)
        if b is None:
            return True
        now = self.clock()
        if now < b.blocked_until:
            return False
        if not b.tripped:
            return True
        return now >= b.open_until and now >= b.probing_until

    async def acquire(self, deployment: str) -> bool:
        if not await self.available(deployment):
            return False
        b = self._breakers.get(deployment)
        if b is not None and b.tripped:  # half-open: this request is the probe
            b.probing_until = self.clock() + max(self.cfg.cooldown_s, 1.0)
        return True

    async def report(self, deployment: str, ok: bool, retry_after: float | None = None
                     ) -> None:
        b, now = self._get(deployment), self.clock()
        if retry_after is not None and retry_after > 0:
            b.blocked_until = max(b.blocked_until, now + retry_after)
        if b.tripped:
            self._after_probe(b, ok, now)
            return
        self._count(b, ok, now)
        if self._should_trip(b):
            b.tripped, b.open_until = True, now + self.cfg.cooldown_s

    def _after_probe(self, b: _Breaker, ok: bool, now: float) -> None:
        b.probing_until = 0.0
        if ok:
            b.tripped, b.consecutive, b.failures = False, 0, 0
            b.events.clear()
        else:
            b.open_until = now + self.cfg.cooldown_s

    def _count(self, b: _Breaker, ok: bool, now: float) -> None:
        b.events.append((now, ok))
        b.failures += not ok
        b.consecutive = 0 if ok else b.consecutive + 1
        horizon = now - self.cfg.window_s
        while b.events and b.events[0][0] < horizon:
            _, old_ok = b.events.popleft()
            b.failures -= not old_ok

    def _should_trip(self, b: _Breaker) -> bool:
        cfg = self.cfg
        if b.consecutive >= cfg.consecutive_failures:
            return True
        n = len(b.events)
        return n >= cfg.min_requests and b.failures / n >= cfg.error_rate


class HealthRecorder:
    """An :class:`~pointsman.state.OutcomeRecorder` that feeds attempts to a HealthStore."""

    def __init__(self, store: HealthStore) -> None:
        self.store = store

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        """A 429 is no failure (the deployment answered; it is busy): it never counts toward
        the breaker, and its Retry-After blocks the deployment until then."""
        if not outcome.deployment or outcome.error_code in NEUTRAL_CODES:
            return
        retry_after = outcome.metadata.get("retry_after")
        ok = outcome.ok or outcome.error_code == RATE_LIMITED
        await self.store.report(outcome.deployment, ok,
                                float(retry_after) if retry_after is not None else None)


class CooldownSource:
    """A :class:`~pointsman.state.StateSource`: models whose every deployment is
    unavailable go into ``LiveState.cooling_down``."""

    def __init__(self, store: HealthStore, deployments: Mapping[str, Sequence[str]]) -> None:
        self.store = store
        self.deployments = {m: tuple(d) for m, d in deployments.items() if d}

    async def cooling(self) -> frozenset[str]:
        out: list[str] = []
        for model, names in self.deployments.items():
            for name in names:
                if await self.store.available(name):
                    break
            else:
                out.append(model)
        return frozenset(out)

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        cooling = await self.cooling()
        if not cooling:
            return state
        return state.replace(cooling_down=state.cooling_down | cooling)


class HealthyFirstChooser:
    """The default :class:`~pointsman.state.DeploymentChooser`: the configured order,
    leaving out deployments that are cooling down or blocked by Retry-After."""

    def __init__(self, store: HealthStore) -> None:
        self.store = store

    async def order(self, model: str, deployments: Sequence[str]) -> list[str]:
        return [d for d in deployments if await self.store.available(d)]
