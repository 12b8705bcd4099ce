"""Server-sent events for ``stream: true``: OpenAI ``chat.completion.chunk`` events ending
in ``data: [DONE]``. A stream that broke after its first token ends with an error event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pointsman import jsonio
from pointsman.errors import PointsmanError
from pointsman.executor import OpenStream
from pointsman.gateway.auth import Principal
from pointsman.gateway.errors import stream_error_event
from pointsman.gateway.parse import ChatRequest
from pointsman.gateway.respond import decision_headers, failed
from pointsman.gateway.runtime import Gateway
from pointsman.requestlog import Outcome
from pointsman.types import Decision

DONE = b"data: [DONE]\n\n"


class EventStream(Response):
    """``text/event-stream`` from an async iterator of bytes, as Starlette's
    ``StreamingResponse`` does it (the body is sent while the client's disconnect is
    awaited; a client that leaves stops the body, whose generator is closed and so closes
    the upstream) on plain asyncio: one watcher task instead of an anyio task group, which
    costs ~50 µs a stream."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncGenerator[bytes, None],
                 headers: Mapping[str, str]) -> None:
        self.body_iterator = content
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self.sending = True
        self.left = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.get_running_loop().create_task(self._watch(receive, task))
        try:
            await self._send_body(send)
        except asyncio.CancelledError:
            if not self.left:
                raise
            task.uncancel()  # our own cancellation: the client left, nothing to report
        finally:
            self.sending = False
            watcher.cancel()

    async def _send_body(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        async with aclosing(self.body_iterator) as body:
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self.sending:
            self.left = True
            task.cancel()


def event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + jsonio.dumps(data) + b"\n\n"


async def stream_response(gw: Gateway, chat: ChatRequest, principal: Principal,
                          decision: Decision, body: dict[str, Any], started: float
                          ) -> Response:
    try:
        opened = await gw.executor.stream(chat.route, decision, body)
    except PointsmanError as exc:
        return await failed(gw, chat, principal, decision, exc, started)
    estimate = gw.catalog.get(opened.model).cost(decision.input_tokens, decision.output_tokens)
    headers = decision_headers(decision, opened.model, opened.models_tried, estimate)
    headers["x-pointsman-cost-estimated"] = "true"
    return EventStream(_events(gw, chat, principal, decision, opened, started),
                       headers={**headers, "cache-control": "no-cache"})


async def _events(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                  opened: OpenStream, started: float) -> AsyncGenerator[bytes, None]:
    """The client's events: one write per upstream batch (what arrived together)."""
    tail = _Tail(chat.include_usage)
    try:
        async with aclosing(opened.batches()) as batches:
            async for batch in batches:
                out = b"".join([event({**chunk, "model": opened.model})
                                for chunk in tail.shown(batch)])
                if out:
                    yield out
        if opened.broken is not None:
            yield stream_error_event(opened.broken)
            return
        if chat.include_usage and not tail.usage_sent:
            yield event(_usage_chunk(opened, tail.last))
        yield DONE
    finally:
        await _finished(gw, chat, principal, decision, opened, started)


class _Tail:
    """What the client is shown of the chunks: the upstream's usage only when asked for
    (a usage-only chunk is dropped, usage is cut from one that has choices)."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.usage_sent = False
        self.last: Mapping[str, Any] = {}

    def shown(self, batch: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        out = []
        for chunk in batch:
            self.last = chunk
            if chunk.get("usage") is not None:
                if not self.include_usage:
                    if not chunk.get("choices"):
                        continue
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
                else:
                    self.usage_sent = True
            out.append(chunk)
        return out


def _usage_chunk(opened: OpenStream, last: Mapping[str, Any]) -> dict[str, Any]:
    """The usage chunk the client asked for, counted by us when the upstream sent none."""
    cost = opened.cost
    prompt = cost.prompt_tokens if cost else 0
    completion = cost.completion_tokens if cost else 0
    return {"id": last.get("id", ""), "object": "chat.completion.chunk",
            "created": last.get("created", int(time.time())), "model": opened.model,
            "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                     "total_tokens": prompt + completion}}


async def _finished(gw: Gateway, chat: ChatRequest, principal: Principal, decision: Decision,
                    opened: OpenStream, started: float) -> None:
    total_ms = (time.perf_counter() - started) * 1000
    cost = opened.cost
    prompt = cost.prompt_tokens if cost else 0
    completion = cost.completion_tokens if cost else 0
    usd = cost.usd if cost else 0.0
    outcome: Outcome = "stream_broken" if opened.broken is not None else "ok"
    gw.metrics.finished(opened.model, outcome, prompt, completion, usd, total_ms / 1000,
                        opened.ttft_ms / 1000)
    if opened.broken is not None:
        gw.metrics.error(opened.broken.code)
    await gw.write_record(chat, principal, decision, outcome=outcome,
                          models_tried=opened.models_tried, model=opened.model,
                          error=opened.broken, prompt_tokens=prompt, completion_tokens=completion,
                          cost_usd=usd, ttft_ms=opened.ttft_ms, total_ms=total_ms)
