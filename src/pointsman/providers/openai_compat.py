"""The OpenAI-compatible adapter: OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter,
Groq, Together, Gemini's OpenAI endpoint and anything else that speaks
``POST {base_url}/chat/completions``.

The body goes upstream untouched (tools, tool_choice, response_format, stream_options
and every other field), except for the IR's door-private ``_pointsman`` and, when it says
the body uses them, the IR extensions an OpenAI endpoint would refuse (thinking, top_k,
thinking_blocks, cache_control, server tools): those are dropped, and what was dropped is
logged. A stream is parsed from server-sent events and must end with ``data: [DONE]``, or
it is a :class:`~pointsman.errors.StreamBrokenError`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from pointsman.doors.base import PRIVATE
from pointsman.errors import StreamBrokenError
from pointsman.providers.base import ChatCall, ChatResult, Usage, usage_details
from pointsman.providers.http import (
    Chunk,
    Deadline,
    HttpAdapter,
    SseEvent,
    bearer_auth,
    decode_event,
    drain,
    kept_headers,
    log,
)
from pointsman.providers.wire import Wire


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    """``usage`` of a completion or chunk, or None when absent or malformed; with its
    cached-input and reasoning details (:func:`~pointsman.providers.base.usage_details`)."""
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens") or 0),
                     int(usage.get("completion_tokens") or 0), **usage_details(usage))
    except (TypeError, ValueError):
        return None


def _uncached(items: Any, dropped: set[str], what: str) -> Any:
    """``items`` (a list of dicts) without ``cache_control``, copied only where needed."""
    if not isinstance(items, list) or not any(
            isinstance(i, Mapping) and "cache_control" in i for i in items):
        return items
    dropped.add(what)
    return [{k: v for k, v in i.items() if k != "cache_control"}
            if isinstance(i, Mapping) else i for i in items]


def _plain_message(message: Any, dropped: set[str]) -> Any:
    if not isinstance(message, Mapping):
        return message
    out = dict(message)
    if out.pop("thinking_blocks", None) is not None:
        dropped.add("message thinking_blocks")
    out["content"] = _uncached(out.get("content"), dropped, "content cache_control")
    if "content" not in message:
        del out["content"]
    return out


def strip_extensions(body: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``body`` without ``_pointsman`` and, when it says extensions are used, without
    those (Anthropic's thinking and top_k, thinking_blocks, cache_control, server tools);
    what was dropped is logged once."""
    out = {k: v for k, v in body.items() if k != PRIVATE}
    private = body.get(PRIVATE)
    if not (isinstance(private, Mapping) and private.get("ext")):
        return out
    dropped: set[str] = {name for name in ("thinking", "top_k") if out.pop(name, None)
                         is not None}
    if isinstance(out.get("messages"), list):
        out["messages"] = [_plain_message(m, dropped) for m in out["messages"]]
    tools = out.get("tools")
    if isinstance(tools, list):
        kept = [t for t in tools if not isinstance(t, Mapping)
                or t.get("type") in (None, "function")]
        if len(kept) < len(tools):
            dropped.add("server tools")
        out["tools"] = _uncached(kept, dropped, "tool cache_control")
        if not out["tools"]:
            for name in ("tools", "tool_choice", "parallel_tool_calls"):
                out.pop(name, None)
    if dropped:
        log.info("%s: dropped what an OpenAI-compatible endpoint does not take: %s", where,
                 ", ".join(sorted(dropped)))
    return out


class OpenAICompatProvider(HttpAdapter):
    """A :class:`~pointsman.providers.base.Provider` for one OpenAI-compatible endpoint.

    ``api_key`` goes in ``Authorization: Bearer`` unless ``api_key_header`` names another
    header (Azure's ``api-key``); ``headers`` are sent with every call (OpenRouter's
    ``HTTP-Referer``, for example).
    """

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient | Wire | None = None, *,
                 api_key: str | None = None, headers: Mapping[str, str] | None = None,
                 api_key_header: str | None = None) -> None:
        super().__init__(name, base_url, client, api_key=api_key, headers=headers)
        self._headers = self.call_headers(bearer_auth(api_key, api_key_header))

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def complete(self, call: ChatCall) -> ChatResult:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=False)
        body = {**call.body, "stream": False}
        body.pop("stream_options", None)
        if PRIVATE in body:
            body = strip_extensions(body, self.name)
        data, headers = await self.fetch_json(self.url, body, self._headers, deadline)
        return ChatResult(data, usage_of(data), kept_headers(headers))

    async def stream_batches(self, call: ChatCall) -> AsyncGenerator[list[Chunk], None]:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=True)
        body = {**call.body, "stream": True}
        if PRIVATE in body:
            body = strip_extensions(body, self.name)
        response = await self.open(self.url, body, self._headers, deadline)
        try:
            async with aclosing(self.event_batches(response, deadline)) as batches:
                async for events in batches:
                    chunks, done, error = self._batch(events, model)
                    if chunks:
                        yield chunks
                    if error is not None:
                        raise error
                    if done:
                        await drain(batches)
                        return
            log.info("%s: stream for %s ended without [DONE]", self.name, model)
            raise StreamBrokenError(f"the stream from {self.where} ended without data: [DONE]",
                                    model)
        finally:
            await response.aclose()

    def _batch(self, events: list[SseEvent], model: str
               ) -> tuple[list[Chunk], bool, StreamBrokenError | None]:
        """(the chunks of ``events``, whether [DONE] came, the error that ended them)."""
        chunks: list[Chunk] = []
        for event in events:
            data = event.data
            if data[:1] != "{" and data.strip() == "[DONE]":
                return chunks, True, None
            try:
                chunks.append(self._chunk(event, model))
            except StreamBrokenError as exc:
                return chunks, False, exc
        return chunks, False, None

    def _chunk(self, event: SseEvent, model: str) -> Chunk:
        chunk = decode_event(event, model, self.where)
        if "error" in chunk and "choices" not in chunk:
            message = self.redact(str(chunk["error"])[:300])
            raise StreamBrokenError(f"upstream error mid-stream: {message}", model)
        return chunk
