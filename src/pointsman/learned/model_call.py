"""How the learned features that ask a model something (the LLM-as-router's difficulty
class, the cascade's judge model) reach that model, and what it cost.

:class:`ExecutorCall` is the gateway's: the call goes through the executor on behalf of the
request being served, so the caller's budgets reserve and pay for it (a refused budget
raises, and the feature falls back), deployments fall back and report health and latency,
and the cost comes from the upstream's usage. :class:`ProviderCall` calls one provider
directly (``pointsman route`` and library use, where there is no budget to charge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pointsman.budget.cost import cost_of
from pointsman.executor import Executor
from pointsman.providers.base import ChatCall, Provider, Timeouts
from pointsman.tokens import estimate_text_tokens
from pointsman.types import Decision, ModelSpec, RouteRequest


@dataclass(frozen=True, slots=True)
class Reply:
    body: Mapping[str, Any]  # an OpenAI chat.completion
    cost_usd: float


class ModelCall(Protocol):
    async def __call__(self, request: RouteRequest, body: Mapping[str, Any],
                       timeout_s: float) -> Reply:
        """Ask the model (``body`` without ``model``) for ``request``'s sake; raise a
        :class:`~pointsman.errors.PointsmanError` or ``TimeoutError`` when it cannot."""
        ...


def side_decision(spec: ModelSpec, body: Mapping[str, Any], reason: str) -> Decision:
    """A decision for a call the gateway makes itself: that model only, no fallbacks."""
    messages = body.get("messages") or []
    tokens = sum(estimate_text_tokens(str(m.get("content") or "")) for m in messages)
    output = int(body.get("max_tokens") or 16)
    estimate = spec.cost(tokens, output)
    return Decision(model=spec.name, fallbacks=(), scores={}, reason=reason,
                    estimated_cost_usd=estimate, baseline_model=spec.name,
                    baseline_cost_usd=estimate, input_tokens=tokens, output_tokens=output,
                    strategy="side-call")


class ExecutorCall:
    """Calls ``spec``'s model through the executor (see the module docstring)."""

    def __init__(self, executor: Executor, spec: ModelSpec, reason: str) -> None:
        self.executor = executor
        self.spec = spec
        self.reason = reason

    async def __call__(self, request: RouteRequest, body: Mapping[str, Any],
                       timeout_s: float) -> Reply:
        decision = side_decision(self.spec, body, self.reason)
        answer = await asyncio.wait_for(self.executor.complete(request, decision, body),
                                        timeout_s)
        return Reply(answer.body, answer.cost.usd)


class ProviderCall:
    """Calls ``provider`` as ``upstream_model``; costed from usage at ``spec``'s prices."""

    def __init__(self, provider: Provider, upstream_model: str, spec: ModelSpec) -> None:
        self.provider = provider
        self.upstream_model = upstream_model
        self.spec = spec

    async def __call__(self, request: RouteRequest, body: Mapping[str, Any],
                       timeout_s: float) -> Reply:
        call = ChatCall({**body, "model": self.upstream_model},
                        Timeouts(timeout_s, timeout_s, timeout_s))
        result = await asyncio.wait_for(self.provider.complete(call), timeout_s)
        cost = cost_of(self.spec, result.usage).usd if result.usage is not None else 0.0
        return Reply(result.body, cost)
