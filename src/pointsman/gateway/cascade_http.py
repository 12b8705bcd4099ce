"""Answering a request through the quality-check cascade: every step is a non-streaming
call through the executor (budget, fallbacks, health apply to each); only the final answer
is sent, as JSON or, for ``stream: true``, as server-sent events.

Headers: ``x-pointsman-attempts`` lists every model asked, ``x-pointsman-cascade`` the
steps with their scores (``gpt-4o-mini:0.30>gpt-4.1:0.92``), ``x-pointsman-cost-usd`` the
cost of all steps. The request log records the same (reason, models tried, total cost).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

from starlette.responses import Response

from pointsman.budget.cost import Cost
from pointsman.errors import PointsmanError
from pointsman.executor import Answer
from pointsman.gateway.auth import Principal
from pointsman.gateway.cascade import (
    asks_confidence,
    cascade_body,
    strip_confidence,
    trail,
    with_threshold,
)
from pointsman.gateway.parse import ChatRequest
from pointsman.gateway.respond import _header, answered, decision_headers, failed
from pointsman.gateway.runtime import Gateway
from pointsman.gateway.sse import DONE, EventStream, event
from pointsman.learned.cascade import CascadeAnswer, Step, answer_chunks
from pointsman.types import Decision


async def cascade_response(gw: Gateway, chat: ChatRequest, principal: Principal,
                           decision: Decision, threshold: float, started: float) -> Response:
    assert gw.cascade is not None
    cascade = with_threshold(gw.cascade, threshold, gw.cascade_thresholds)
    try:
        result = await cascade.complete(chat.route, decision,
                                        cascade_body(chat.body, gw.config.cascade))
    except PointsmanError as exc:  # the first step found no model at all
        return await failed(gw, chat, principal, decision, exc, started)
    for step in result.steps:
        gw.metrics.cascade.labels(step.model, _result(step, threshold)).inc()
    steps = trail(result.steps)
    decision = replace(decision, reason=f"{decision.reason}; cascade@{threshold:g}: {steps}")
    answer = _final(result, asks_confidence(gw.config.cascade))
    if chat.stream:
        return await _streamed(gw, chat, principal, decision, answer, steps, started)
    response = answered(gw, chat, principal, decision, answer, started)
    response.headers["x-pointsman-cascade"] = _header(steps)
    return response


def _result(step: Step, threshold: float) -> str:
    if step.error is not None:
        return "failed"
    if step.score is None:
        return "unjudged"
    return "passed" if step.score >= threshold else "below"


def _final(result: CascadeAnswer, strip: bool) -> Answer:
    """The final answer, costed and attributed for every step."""
    best = result.answer
    tried = [*(s.model for s in result.steps), *best.models_tried]
    cost = Cost(best.cost.prompt_tokens, best.cost.completion_tokens, result.total_cost_usd,
                best.cost.reported)
    body = strip_confidence(best.body) if strip else best.body
    return replace(best, body=body, cost=cost, models_tried=tuple(dict.fromkeys(tried)))


async def _streamed(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                    answer: Answer, steps: str, started: float) -> Response:
    headers = decision_headers(decision, answer.model, answer.models_tried, answer.cost.usd)
    headers["x-pointsman-cascade"] = _header(steps)
    return EventStream(_events(gw, chat, principal, decision, answer, started),
                       headers={**headers, "cache-control": "no-cache"})


def _chunks(answer: Answer) -> list[dict[str, Any]]:
    """The final answer's chunks, with its tool calls (if any) before the finish chunk."""
    chunks = list(answer_chunks(answer))
    message = ((answer.body.get("choices") or [{}])[0].get("message") or {})
    calls = message.get("tool_calls") or []
    if calls:
        delta = {"tool_calls": [{**call, "index": i} for i, call in enumerate(calls)]}
        chunks.insert(-1, {**chunks[0], "choices": [{"index": 0, "delta": delta,
                                                     "finish_reason": None}]})
    return chunks


async def _events(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                  answer: Answer, started: float) -> AsyncGenerator[bytes, None]:
    ttft_ms = (time.perf_counter() - started) * 1000
    try:
        for chunk in _chunks(answer):
            if not chat.include_usage:
                chunk.pop("usage", None)
            yield event(chunk)
        yield DONE
    finally:
        total_ms = (time.perf_counter() - started) * 1000
        cost = answer.cost
        gw.metrics.finished(answer.model, "ok", cost.prompt_tokens, cost.completion_tokens,
                            cost.usd, total_ms / 1000, ttft_ms / 1000)
        await gw.write_record(chat, principal, decision, outcome="ok",
                              models_tried=answer.models_tried, model=answer.model,
                              prompt_tokens=cost.prompt_tokens,
                              completion_tokens=cost.completion_tokens, cost_usd=cost.usd,
                              ttft_ms=ttft_ms, total_ms=total_ms)
