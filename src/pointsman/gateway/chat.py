"""``POST /v1/chat/completions``: authenticate, parse, route, execute, answer, log."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pointsman.errors import PointsmanError
from pointsman.gateway.cascade import cascade_threshold
from pointsman.gateway.errors import error_response
from pointsman.gateway.parse import ChatRequest, parse_chat, read_json
from pointsman.gateway.respond import answered, failed
from pointsman.gateway.runtime import Gateway
from pointsman.gateway.sse import stream_response


def upstream_body(chat: ChatRequest) -> dict[str, Any]:
    body = dict(chat.body)
    if chat.stream:  # always ask for usage, to cost the stream; the client sees it if asked
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started = time.perf_counter()
    try:
        principal = gw.keys.authenticate(request.headers.get("authorization"))
        body = await read_json(request, gw.config.gateway.max_body_bytes)
        chat = parse_chat(request, body, principal.owner, trust_headers=principal.admin)
    except PointsmanError as exc:  # not a request yet: not logged, only counted
        gw.metrics.error(exc.code)
        return error_response(exc)
    try:
        principal.check_model(chat.model)
        decision = await gw.decide(chat)
    except PointsmanError as exc:  # refused (model, budget, no candidate): logged
        gw.metrics.error(exc.code)
        await gw.write_record(chat, principal, None, outcome="error", models_tried=(),
                              error=exc, total_ms=(time.perf_counter() - started) * 1000)
        return error_response(exc)
    if gw.cascade is not None:
        threshold = cascade_threshold(chat.model, gw.config.cascade)
        if threshold is not None:
            from pointsman.gateway.cascade_http import cascade_response

            return await cascade_response(gw, chat, principal, decision, threshold, started)
    if chat.stream:
        return await stream_response(gw, chat, principal, decision, upstream_body(chat),
                                     started)
    try:
        answer = await gw.executor.complete(chat.route, decision, upstream_body(chat),
                                            defer_reports=True)
    except PointsmanError as exc:
        return await failed(gw, chat, principal, decision, exc, started)
    return answered(gw, chat, principal, decision, answer, started)
