"""The Protocol every complexity scorer implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pointsman.types import RouteRequest


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A scorer's own pick (a semantic route, a learned many-model choice).

    Sends the request to ``model`` or to the best eligible model of ``tier``; the decision's
    ``rule`` names it as ``route:<name>``. Config rules still take precedence.
    """

    name: str
    model: str | None = None
    tier: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Signal:
    """A complexity score in [0, 100] with the sub-signals that produced it.

    ``stage`` names the part of a composite scorer that decided (hybrid cascades);
    ``target`` is set when the scorer picks a model or tier itself; ``cost_usd`` is what
    scoring cost (a model asked by the LLM-as-router), part of the request's cost.
    """

    score: float
    signals: Mapping[str, float] = field(default_factory=dict)
    task_type: str | None = None
    stage: str | None = None
    target: RouteTarget | None = None
    cost_usd: float = 0.0


@runtime_checkable
class ComplexityScorer(Protocol):
    """Scores how hard a request is. Pure: the same request gives the same score."""

    name: str

    def score(self, request: RouteRequest) -> Signal: ...


@runtime_checkable
class AsyncComplexityScorer(Protocol):
    """A scorer that needs I/O (an LLM-as-router, a remote classifier).

    The gateway awaits :meth:`ascore` and passes the signal to ``Router.decide(signal=...)``;
    the synchronous :meth:`score` is its offline fallback (used by ``pointsman route``).
    """

    name: str

    def score(self, request: RouteRequest) -> Signal: ...

    async def ascore(self, request: RouteRequest) -> Signal: ...
