"""Plain value types shared by the routing core and the edges.

They are frozen dataclasses (cheap to build, hashable where useful) rather than
pydantic models: the router builds them on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Role = Literal["system", "user", "assistant", "tool", "developer"]
Capability = Literal["streaming", "tools", "json_mode", "vision", "batch"]
TIERS: tuple[str, ...] = ("local", "cheap", "mid", "premium")


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


_NO_CAPABILITIES: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the router needs to know about one request.

    ``metadata`` carries the caller's context: ``task_type``, ``plan``, ``realtime``,
    ``key``, ``user``, ``team``, ``session``, ``latency_target_ms``, ``use_case``.
    """

    messages: tuple[Message, ...]
    tools_count: int = 0
    needs_json: bool = False
    needs_vision: bool = False
    stream: bool = False
    max_output_tokens: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_prompt(prompt: str, **kwargs: Any) -> RouteRequest:
        return RouteRequest(messages=(Message("user", prompt),), **kwargs)

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return self.messages[-1].content if self.messages else ""

    @property
    def required_capabilities(self) -> frozenset[str]:
        if not (self.tools_count or self.needs_json or self.needs_vision or self.stream):
            return _NO_CAPABILITIES  # the common case, without building a set
        caps: set[str] = set()
        if self.tools_count:
            caps.add("tools")
        if self.needs_json:
            caps.add("json_mode")
        if self.needs_vision:
            caps.add("vision")
        if self.stream:
            caps.add("streaming")
        return frozenset(caps)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of the catalog. Prices are US dollars per million tokens;
    ``cache_read_price`` / ``cache_write_price`` price the input tokens read from / written
    to the provider's prompt cache (None: unknown, billed at ``input_price``)."""

    name: str
    provider: str
    input_price: float
    output_price: float
    context_window: int
    capabilities: frozenset[str]
    tier: str
    quality: float
    latency_ms: float
    ttft_ms: float
    upstream_model: str = ""
    max_output_tokens: int = 16_384
    cache_read_price: float | None = None
    cache_write_price: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
             cache_creation_tokens: int = 0) -> float:
        """Cost in US dollars of a call with these token counts. ``input_tokens`` is all
        input, the cache reads (``cached_tokens``) and writes (``cache_creation_tokens``)
        included: those are priced at the cache prices, the rest at the input price, so
        nothing is counted twice (and a report whose cache counts exceed its input is not
        credited for the difference). ``output_tokens`` includes any reasoning."""
        if not (cached_tokens or cache_creation_tokens):  # estimates: the hot path
            return (input_tokens * self.input_price + output_tokens * self.output_price) / 1e6
        uncached = max(0, input_tokens - cached_tokens - cache_creation_tokens)
        read = self.input_price if self.cache_read_price is None else self.cache_read_price
        write = self.input_price if self.cache_write_price is None else self.cache_write_price
        return (uncached * self.input_price + cached_tokens * read
                + cache_creation_tokens * write + output_tokens * self.output_price) / 1e6

    @property
    def wire_name(self) -> str:
        return self.upstream_model or self.name


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Live latency of one model (milliseconds), from the latency windows.

    The optional fields are filled by :mod:`pointsman.latency`; ``tokens_per_s`` are
    percentiles of output speed (tokens after the first / time after the first token).
    """

    p50_ttft_ms: float
    p95_ttft_ms: float
    p95_total_ms: float
    samples: int
    p99_ttft_ms: float | None = None
    p50_total_ms: float | None = None
    p99_total_ms: float | None = None
    p50_tokens_per_s: float | None = None
    p95_tokens_per_s: float | None = None
    p99_tokens_per_s: float | None = None
    timeouts: int = 0


@dataclass(frozen=True, slots=True)
class BudgetView:
    """Live budget position of the tightest budget that applies to a request."""

    name: str
    limit_usd: float
    spent_usd: float
    resets_at: str | None = None
    premium_requests_left: int | None = None

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)

    @property
    def used_fraction(self) -> float:
        return 1.0 if self.limit_usd <= 0 else self.spent_usd / self.limit_usd


@dataclass(frozen=True, slots=True)
class SessionView:
    """The conversation a request continues: the model that answered its previous turn and
    that turn's prompt tokens (the prefix the provider can serve from its prompt cache)."""

    session: str
    model: str
    prefix_tokens: int


@dataclass(frozen=True, slots=True)
class LiveState:
    """A snapshot of the live state the router reads: never mutated by the router."""

    latency: Mapping[str, LatencyStats] = field(default_factory=dict)
    cooling_down: frozenset[str] = frozenset()
    budget: BudgetView | None = None
    bandit_bonus: Mapping[str, float] = field(default_factory=dict)
    undeployed: frozenset[str] = frozenset()  # models with no deployment to call
    session: SessionView | None = None  # the conversation's previous turn (affinity)
    # tier → the score (in [0, 1]) below which a request may not go to that tier: the
    # live quantiles of router.targets (pointsman.shares); empty: no tier-share targets
    tier_thresholds: Mapping[str, float] = field(default_factory=dict)

    @staticmethod
    def empty() -> LiveState:
        return _EMPTY_STATE

    def replace(self, **changes: Any) -> LiveState:
        """A copy with ``changes`` (``dataclasses.replace`` costs ~5x more: every request
        builds one state per live source)."""
        return LiveState(**{"latency": self.latency, "cooling_down": self.cooling_down,
                            "budget": self.budget, "bandit_bonus": self.bandit_bonus,
                            "undeployed": self.undeployed, "session": self.session,
                            "tier_thresholds": self.tier_thresholds, **changes})


_EMPTY_STATE = LiveState()
NO_DEPLOYMENT = "no deployment is configured"  # why a model in LiveState.undeployed is left out


class CandidateScore(NamedTuple):
    """How one candidate fared in the weighted score (a NamedTuple: built on the hot path)."""

    model: str
    total: float
    fit: float
    cost: float
    latency: float
    estimated_cost_usd: float
    bonus: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything a routing decision used, so it can be logged, replayed and explained."""

    model: str
    fallbacks: tuple[str, ...]
    scores: Mapping[str, Any]
    reason: str
    estimated_cost_usd: float
    baseline_model: str
    baseline_cost_usd: float
    input_tokens: int
    output_tokens: int
    strategy: str
    rule: str | None = None
    signals: Mapping[str, float] = field(default_factory=dict)
    task_type: str | None = None
    candidates: tuple[CandidateScore, ...] = ()
    filtered_out: Mapping[str, str] = field(default_factory=dict)
    stage: str | None = None
    routing_cost_usd: float = 0.0  # what deciding cost (a model asked by the scorer)
    # the online experiment and arm that decided, and the threshold in force when a
    # tier-share target moves it (None: no experiment / the configured threshold)
    experiment: str | None = None
    arm: str | None = None
    threshold: float | None = None

    @property
    def savings_usd(self) -> float:
        return self.baseline_cost_usd - self.estimated_cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "fallbacks": list(self.fallbacks),
            "scores": {name: round(value, 6) for name, value in self.scores.items()},
            "reason": self.reason,
            "rule": self.rule,
            "strategy": self.strategy,
            "stage": self.stage,
            "routing_cost_usd": self.routing_cost_usd,
            "task_type": self.task_type,
            "signals": dict(self.signals),
            "estimated_cost_usd": self.estimated_cost_usd,
            "baseline_model": self.baseline_model,
            "baseline_cost_usd": self.baseline_cost_usd,
            "savings_usd": self.savings_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "candidates": [
                {
                    "model": c.model,
                    "total": round(c.total, 6),
                    "fit": round(c.fit, 4),
                    "cost": round(c.cost, 4),
                    "latency": round(c.latency, 4),
                    "bonus": round(c.bonus, 6),
                    "estimated_cost_usd": c.estimated_cost_usd,
                }
                for c in self.candidates
            ],
            "filtered_out": dict(self.filtered_out),
            **({"experiment": self.experiment, "arm": self.arm} if self.arm else {}),
            **({"threshold": self.threshold} if self.threshold is not None else {}),
        }
