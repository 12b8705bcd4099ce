"""How the learned features that ask a model something (the LLM-as-router's difficulty
class, the cascade's judge model, the agreement judge's second model) reach that model,
and what it cost.

They are handed a :class:`CallModel` service (a catalog model's name and the purpose →
the :class:`ModelCall` that asks it) instead of building one: the gateway's goes through
its executor (:func:`executor_calls`), ``pointsman route`` and library use call the
model's first deployment (:func:`direct_calls`), the lab answers from recorded answers
(:func:`recorded_calls`). Scorer factories receive it as their third argument (see
:mod:`pointsman.registry`), built-ins and plugins alike.

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
from typing import TYPE_CHECKING, Any, Protocol

from pointsman.budget.cost import cost_of
from pointsman.errors import ConfigError, DataError
from pointsman.executor import Executor
from pointsman.providers.base import ChatCall, Provider, Timeouts
from pointsman.tokens import estimate_text_tokens
from pointsman.types import Decision, ModelSpec, RouteRequest

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.config import PointsmanConfig
    from pointsman.learning import OutcomeTable


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


class CallModel(Protocol):
    def __call__(self, model: str, purpose: str) -> ModelCall:
        """The call that asks catalog model ``model`` (``purpose``: why, for its decision's
        reason); a :class:`~pointsman.errors.ConfigError` when it cannot be asked."""
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


def executor_calls(executor: Executor) -> CallModel:
    """The gateway's service: every call goes through ``executor`` (see the module
    docstring)."""
    def make(model: str, purpose: str) -> ModelCall:
        return ExecutorCall(executor, executor.catalog.get(model), purpose)
    return make


def direct_calls(config: PointsmanConfig) -> CallModel:
    """Library and CLI use: a model's first usable deployment, called directly (the
    providers are built on the first call)."""
    built: list[tuple[Catalog, Any]] = []

    def make(model: str, purpose: str) -> ModelCall:
        from pointsman.providers.config import build_providers
        from pointsman.router import resolve_catalog

        if not built:
            catalog = resolve_catalog(config)
            built.append((catalog, build_providers(config, catalog)))
        catalog, providers = built[0]
        if model not in catalog:
            raise ConfigError(f"{purpose}: unknown model {model!r}")
        deployments = providers.deployments(model)
        if not deployments:
            raise ConfigError(f"{purpose}: {model!r} has no usable deployment (is its "
                              "endpoint's API key set?)")
        first = deployments[0]
        return ProviderCall(first.provider, first.upstream_model, catalog.get(model))
    return make


class RecordedCall:
    """Answers from recorded data (the lab): the answer ``model`` gave to the request's
    last user message, costed as recorded; an unrecorded prompt is a ``DataError``."""

    def __init__(self, model: str, answers: Mapping[str, tuple[str, float]]) -> None:
        self.model = model
        self.answers = answers

    async def __call__(self, request: RouteRequest, body: Mapping[str, Any],
                       timeout_s: float) -> Reply:
        found = self.answers.get(request.last_user_text)
        if found is None:
            raise DataError(f"no recorded answer of {self.model!r} to this prompt")
        text, cost = found
        return Reply({"choices": [{"message": {"role": "assistant", "content": text},
                                   "finish_reason": "stop"}]}, cost)


def recorded_calls(table: OutcomeTable) -> CallModel:
    """The lab's service: each model answers with its recorded answers in ``table``."""
    if table.answers is None:
        raise ConfigError("recorded model calls need data with answers")
    answers = table.answers

    def make(model: str, purpose: str) -> ModelCall:
        if model not in table.models:
            raise ConfigError(f"{purpose}: model {model!r} is not in the data")
        j = table.models.index(model)
        cost = table.cost[:, j] if table.cost is not None else [0.0] * len(table)
        return RecordedCall(model, {p: (str(answers[i, j] or ""), float(cost[i]))
                                    for i, p in enumerate(table.prompts)})
    return make
