"""Building the gateway's answers: the ``x-pointsman-*`` headers, the success body and the
error body, with the request log record and metrics of each."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.background import BackgroundTask
from starlette.responses import Response

from pointsman import jsonio
from pointsman.errors import AllAttemptsFailedError, PointsmanError
from pointsman.executor import Answer
from pointsman.gateway.auth import Principal
from pointsman.gateway.errors import error_response
from pointsman.gateway.parse import ChatRequest
from pointsman.gateway.runtime import Gateway
from pointsman.types import Decision


def _header(value: str) -> str:
    """Header values are latin-1: keep them ASCII."""
    return value.encode("ascii", "replace").decode("ascii").replace("\n", " ")


def decision_headers(decision: Decision, model: str, attempts: Sequence[str],
                     cost_usd: float) -> dict[str, str]:
    """``cost_usd``: the answer's; the routing call's cost (LLM-as-router) is added."""
    return {"x-pointsman-model": model,
            "x-pointsman-reason": _header(decision.reason),
            "x-pointsman-cost-usd": f"{cost_usd + decision.routing_cost_usd:.8f}",
            "x-pointsman-attempts": ",".join(attempts)}


def tried_models(error: PointsmanError) -> list[str]:
    if isinstance(error, AllAttemptsFailedError):
        return list(dict.fromkeys(a.model for a in error.attempts))
    model = getattr(error, "model", "")
    return [model] if model else []


def answered(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
             answer: Answer, started: float) -> Response:
    """The answer (its cost already settled), sent before its outcome reports, metrics and
    request log record, which follow within the same request: a drain on SIGTERM waits
    for them."""
    total_ms = (time.perf_counter() - started) * 1000
    headers = decision_headers(decision, answer.model, answer.models_tried, answer.cost.usd)
    return Response(jsonio.dumps(answer.body), 200, headers=headers,
                    media_type="application/json",
                    background=BackgroundTask(_report, gw, chat, principal, decision, answer,
                                              total_ms))


async def _report(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                  answer: Answer, total_ms: float) -> None:
    if answer.reports is not None:
        await answer.reports()  # a failing recorder is logged, the others still told
    cost = answer.cost
    gw.metrics.finished(answer.model, "ok", cost.prompt_tokens, cost.completion_tokens,
                        cost.usd, total_ms / 1000, None)
    await gw.write_record(chat, principal, decision, outcome="ok",
                          models_tried=answer.models_tried, model=answer.model,
                          prompt_tokens=cost.prompt_tokens,
                          completion_tokens=cost.completion_tokens, cost_usd=cost.usd,
                          ttft_ms=total_ms, total_ms=total_ms)


async def failed(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                 error: PointsmanError, started: float) -> Response:
    total_ms = (time.perf_counter() - started) * 1000
    tried = tried_models(error)
    gw.metrics.error(error.code)
    await gw.write_record(chat, principal, decision, outcome="error", models_tried=tried,
                          error=error, total_ms=total_ms)
    headers = {"x-pointsman-reason": _header(decision.reason),
               "x-pointsman-attempts": ",".join(tried)}
    return error_response(error, headers)
