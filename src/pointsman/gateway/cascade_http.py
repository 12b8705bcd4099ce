"""Answering a request through the quality-check cascade: every step is a non-streaming
call through the executor (budget, fallbacks, health apply to each); only the final answer
is sent (by the request's :class:`~pointsman.gateway.exchange.Exchange`), as JSON or, for
``stream: true``, replayed as the door's server-sent events.

Headers: ``x-pointsman-attempts`` lists every model asked (the agreement judge's second
model too), ``x-pointsman-cascade`` the steps with their scores
(``gpt-4o-mini:0.30>gpt-4.1:0.92``), ``x-pointsman-cascade-policy`` the
``cascade.policies`` entry that applied (``default`` when none did),
``x-pointsman-cost-usd`` the cost of every call. The request log records the same
(reason, models tried, total cost).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pointsman.budget.cost import nano_usd
from pointsman.executor import Answer
from pointsman.gateway.cascade import (
    asks_confidence,
    cascade_body,
    explicit_threshold,
    strip_confidence,
    trail,
    with_threshold,
)
from pointsman.gateway.parse import ChatRequest
from pointsman.gateway.runtime import Gateway
from pointsman.learned.cascade import CascadeAnswer, Step, answer_chunks
from pointsman.types import Decision


async def run_cascade(gw: Gateway, chat: ChatRequest, decision: Decision, threshold: float
                      ) -> tuple[Decision, Answer, dict[str, str]]:
    """(the decision with the cascade's policy and trail in its reason, the final answer
    costed for every call, the ``x-pointsman-cascade*`` headers)."""
    assert gw.cascade is not None
    policy = gw.cascade.choose(decision, chat.model)
    cascade, label = gw.cascade.default, "default"
    if policy is not None:
        cascade, label = policy.cascade, policy.name
        if policy.config.threshold is not None and not explicit_threshold(chat.model):
            threshold = policy.config.threshold
        if policy.config.chain:
            chain = policy.config.chain
            decision = replace(decision, model=chain[0], fallbacks=tuple(chain[1:]))
    cascade = with_threshold(cascade, threshold, gw.cascade_thresholds)
    result = await cascade.complete(chat.route, decision,
                                    cascade_body(chat.body, gw.config.cascade))
    for step in result.steps:
        gw.metrics.cascade.labels(step.model, _result(step, threshold)).inc()
    steps = trail(result.steps)
    named = "" if policy is None else f" policy {label}"
    decision = replace(decision,
                       reason=f"{decision.reason}; cascade{named}@{threshold:g}: {steps}")
    headers = {"x-pointsman-cascade": steps, "x-pointsman-cascade-policy": label}
    return decision, _final(result, asks_confidence(gw.config.cascade)), headers


def _result(step: Step, threshold: float) -> str:
    if step.error is not None:
        return "failed"
    if step.score is None:
        return "unjudged"
    return "passed" if step.score >= threshold else "below"


def _final(result: CascadeAnswer, strip: bool) -> Answer:
    """The final answer, costed and attributed for every step."""
    best = result.answer
    tried = [*result.asked, *best.models_tried]
    cost = replace(best.cost, usd=nano_usd(result.total_cost_usd))  # the final's tokens
    body = strip_confidence(best.body) if strip else best.body
    return replace(best, body=body, cost=cost, models_tried=tuple(dict.fromkeys(tried)))


def cascade_chunks(answer: Answer) -> list[dict[str, Any]]:
    """The final answer's chunks, with its tool calls (if any) before the finish chunk."""
    chunks = list(answer_chunks(answer))
    message = ((answer.body.get("choices") or [{}])[0].get("message") or {})
    calls = message.get("tool_calls") or []
    if calls:
        delta = {"tool_calls": [{**call, "index": i} for i, call in enumerate(calls)]}
        chunks.insert(-1, {**chunks[0], "choices": [{"index": 0, "delta": delta,
                                                     "finish_reason": None}]})
    return chunks
