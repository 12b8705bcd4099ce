"""Protocols between the executor and the live-state stores (budgets, latency, health).

The routing core only *reads* a :class:`~pointsman.types.LiveState` snapshot. The
executor (gateway) asks each :class:`StateSource` for its part of the snapshot before
routing, and tells each :class:`OutcomeRecorder` what every attempt did afterwards.
Budgets add the reserve / settle / release cycle of :class:`BudgetGuard`: the
estimated cost is reserved atomically before the call, settled with the actual cost
after it, released on failure, so concurrent requests never overspend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pointsman.types import LiveState, RouteRequest


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt of one model did (one per model tried)."""

    model: str
    deployment: str
    ok: bool
    error_code: str | None
    ttft_ms: float | None
    total_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    timed_out: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class StateSource(Protocol):
    """Contributes to the live state the router reads (latency windows, health, budget)."""

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        """Return ``state`` with this source's part filled in (``dataclasses.replace``)."""
        ...


@runtime_checkable
class OutcomeRecorder(Protocol):
    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None: ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """A hold on budget for one call; ``token`` identifies it in the store."""

    token: str
    amount_usd: float
    budgets: tuple[str, ...]


@runtime_checkable
class BudgetGuard(Protocol):
    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float
                      ) -> Reservation:
        """Hold ``estimated_usd`` on every budget that applies, atomically, or raise
        :class:`pointsman.errors.BudgetExceededError`."""
        ...

    async def settle(self, reservation: Reservation, actual_usd: float) -> None: ...

    async def release(self, reservation: Reservation) -> None: ...


@runtime_checkable
class DeploymentChooser(Protocol):
    """Orders the deployments (endpoints) of one model before the executor tries them.

    The executor calls :meth:`order` once per model it tries and walks the result in order;
    deployments it leaves out are not tried. The default keeps the configured order;
    adaptive choosers (UCB1 over latency, success and cost) live in
    :mod:`pointsman.latency`.
    """

    async def order(self, model: str, deployments: Sequence[str]) -> list[str]: ...
