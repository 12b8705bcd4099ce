"""The Anthropic Messages front door (``POST /v1/messages``, ``/v1/messages/count_tokens``).

The request side is :mod:`pointsman.doors.messages_request`. Answers go back as
Anthropic ``Message`` bodies and Anthropic server-sent events:

    IR finish_reason        stop → end_turn (stop_sequence when the choice's ``stop_reason``
                            names one of the request's stop sequences, as vLLM reports it
                            and the Anthropic adapter keeps it), length → max_tokens,
                            tool_calls → tool_use, content_filter → refusal
    IR usage                input_tokens = prompt − cached − cache writes (Anthropic counts
                            them apart), output_tokens, cache_read / cache_creation tokens
    reasoning_content       a thinking block; when no ``thinking_blocks`` carry Claude's
                            signature it is empty (the Anthropic adapter drops such blocks
                            when they come back, since Anthropic cannot verify them)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pointsman import jsonio
from pointsman.doors.base import AnswerContext, Chunk, DoorName, StreamEncoder, StreamUsage
from pointsman.doors.messages_request import dumps, read_request
from pointsman.errors import PointsmanError, http_status
from pointsman.tokens import MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMING_TOKENS, estimate_text_tokens

log = logging.getLogger("pointsman.doors")
Block = dict[str, Any]
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               415: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
               502: "api_error", 503: "overloaded_error", 504: "timeout_error",
               529: "overloaded_error"}
IMAGE_TOKENS = 1600  # Anthropic's cost of an image at its largest size (~1.15 megapixels)


def error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status."""
    found = ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if status < 500 else "api_error"


def anthropic_usage(prompt: int, completion: int, cached: int, created: int) -> dict[str, int]:
    """IR token counts as Anthropic's usage (input_tokens excludes the cache's share)."""
    return {"input_tokens": max(0, prompt - cached - created), "output_tokens": completion,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": created}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_of(usage: Any) -> dict[str, int]:
    if not isinstance(usage, Mapping):
        usage = {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    return anthropic_usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")),
                           _int(details.get("cached_tokens")),
                           _int(details.get("cache_creation_tokens")))


def _stop_sequences(request: Mapping[str, Any]) -> list[str]:
    stops = request.get("stop_sequences")
    return [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []


def stop_reason(finish: Any, matched: Any, request: Mapping[str, Any],
                tools: bool) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) from an IR finish_reason and the choice's stop_reason."""
    if finish == "stop" and isinstance(matched, str) and matched in _stop_sequences(request):
        return "stop_sequence", matched
    if not isinstance(finish, str) or finish not in STOP_REASONS:
        return ("tool_use" if tools else "end_turn"), None
    return STOP_REASONS[finish], None


def thinking_of(message: Mapping[str, Any]) -> list[Block]:
    """The thinking blocks of an IR answer message: its ``thinking_blocks``, else its
    ``reasoning_content`` as one unsigned block."""
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list):
        out = []
        for block in blocks:
            if isinstance(block, Mapping) and block.get("type") == "redacted_thinking":
                out.append({"type": "redacted_thinking", "data": str(block.get("data") or "")})
            elif isinstance(block, Mapping) and block.get("type") == "thinking":
                out.append({"type": "thinking", "thinking": str(block.get("thinking") or ""),
                            "signature": str(block.get("signature") or "")})
        if out:
            return out
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content
                       if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def tool_input(arguments: Any, name: str) -> dict[str, Any]:
    """A tool call's arguments (JSON text) as tool_use ``input``; {} when not an object."""
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("messages door: tool call %r has arguments that are not a JSON object: "
                    "%.80r; sent as {}", name,
                    arguments if isinstance(arguments, str) else type(arguments).__name__)
        return {}
    return value


def tool_uses(message: Mapping[str, Any], request_id: str) -> list[Block]:
    calls = message.get("tool_calls")
    out = []
    for i, call in enumerate(calls if isinstance(calls, list) else ()):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        name = str(function.get("name") or "")
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") \
            else f"toolu_{request_id}_{i}"
        out.append({"type": "tool_use", "id": call_id, "name": name,
                    "input": tool_input(function.get("arguments"), name)})
    return out


def answer_message(completion: Mapping[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    """An IR ``chat.completion`` as an Anthropic ``Message``."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices \
        and isinstance(choices[0], Mapping) else {}
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    content = thinking_of(message)
    text = _text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    tools = tool_uses(message, ctx.request_id)
    content.extend(tools)
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"),
                                   ctx.request, bool(tools))
    return {"id": f"msg_{ctx.request_id}", "type": "message", "role": "assistant",
            "model": ctx.shown_model, "content": content, "stop_reason": reason,
            "stop_sequence": sequence, "usage": usage_of(completion.get("usage"))}


def error_body(error: PointsmanError, status: int) -> dict[str, Any]:
    """Anthropic's error shape."""
    return {"type": "error", "error": {"type": error_type(status), "message": error.message}}


_PLAIN = frozenset({"role", "content"})  # a delta of text only


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event (orjson: this runs once per streamed token)."""
    return b"event: " + event.encode() + b"\ndata: " + jsonio.dumps(data) + b"\n\n"


class MessagesEncoder:
    """IR chunk batches → Anthropic events. Anthropic content blocks come one at a time:
    a change of kind (thinking, text, a new tool call) stops the open block and starts
    the next; tool-call argument deltas go to their call's block."""

    def __init__(self, ctx: AnswerContext) -> None:
        self.ctx = ctx
        self.started = False
        self.blocks = 0  # blocks started so far (the next block's index)
        self.open: str | None = None  # "thinking", "text", "tool" or None
        self.calls: dict[int, int] = {}  # IR tool-call index → block index
        self.finish: Any = None
        self.matched: Any = None
        self._text_head = b""  # the open text block's delta event, up to its text

    def _start(self) -> bytes:
        self.started = True
        message: Block = {"id": f"msg_{self.ctx.request_id}", "type": "message",
                          "role": "assistant",
                   "model": self.ctx.shown_model, "content": [], "stop_reason": None,
                   "stop_sequence": None,
                   "usage": anthropic_usage(self.ctx.input_tokens_estimate, 0, 0, 0)}
        return sse("message_start", {"type": "message_start", "message": message}) \
            + sse("ping", {"type": "ping"})

    def _stop(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse("content_block_stop", {"type": "content_block_stop",
                                          "index": self.blocks - 1})

    def _open(self, kind: str, block: Block) -> bytes:
        out = self._stop()
        self.open = kind
        self.blocks += 1
        return out + sse("content_block_start", {"type": "content_block_start",
                                                 "index": self.blocks - 1,
                                                 "content_block": block})

    def _delta(self, delta: Block, index: int | None = None) -> bytes:
        at = self.blocks - 1 if index is None else index
        return sse("content_block_delta", {"type": "content_block_delta", "index": at,
                                           "delta": delta})

    def _thinking(self, text: str) -> bytes:
        out = b"" if self.open == "thinking" else self._open(
            "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        return out + self._delta({"type": "thinking_delta", "thinking": text})

    def _thinking_blocks(self, blocks: Any) -> bytes:
        out = b""
        for block in blocks if isinstance(blocks, list) else ():
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "redacted_thinking":
                out += self._open("redacted", {"type": "redacted_thinking",
                                               "data": str(block.get("data") or "")})
                out += self._stop()
                continue
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                out += self._thinking(block["thinking"])
            if isinstance(block.get("signature"), str) and block["signature"]:
                if self.open != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": "",
                                                   "signature": ""})
                out += self._delta({"type": "signature_delta", "signature": block["signature"]})
        return out

    def _text(self, text: str) -> bytes:
        """A text delta; the event's constant part is built once per block (this runs once
        per streamed token)."""
        out = b""
        if self.open != "text":
            out = self._open("text", {"type": "text", "text": ""})
            self._text_head = (b'event: content_block_delta\ndata: {"type":"content_block_'
                               b'delta","index":%d,"delta":{"type":"text_delta","text":'
                               % (self.blocks - 1))
        return out + self._text_head + jsonio.dumps(text) + b"}}\n\n"

    def _tool_calls(self, calls: Any) -> bytes:
        out = b""
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, Mapping):
                continue
            number = _int(call.get("index"))
            found = call.get("function")
            function: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            if number not in self.calls:
                call_id = call.get("id") or f"toolu_{self.ctx.request_id}_{number}"
                out += self._open("tool", {"type": "tool_use", "id": str(call_id),
                                           "name": str(function.get("name") or ""),
                                           "input": {}})
                self.calls[number] = self.blocks - 1
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": arguments},
                                   self.calls[number])
        return out

    def _chunk(self, chunk: Chunk) -> bytes:
        choices = chunk.get("choices")
        if choices.__class__ is list and len(choices) == 1:  # the common token chunk, inline
            choice = choices[0]
            delta = choice.get("delta") if choice.__class__ is dict else None
            if delta.__class__ is dict and delta.keys() <= _PLAIN \
                    and not choice.get("finish_reason"):
                content = delta.get("content")
                return self._text(content) if content.__class__ is str and content else b""
        out = b""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
                    out += self._thinking(delta["reasoning_content"])
                if delta.get("thinking_blocks"):
                    out += self._thinking_blocks(delta["thinking_blocks"])
                if isinstance(delta.get("content"), str) and delta["content"]:
                    out += self._text(delta["content"])
                if delta.get("tool_calls"):
                    out += self._tool_calls(delta["tool_calls"])
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.matched = choice.get("stop_reason")
        return out

    def encode(self, batch: Sequence[Chunk]) -> bytes:
        out = b"" if self.started else self._start()
        for chunk in batch:
            out += self._chunk(chunk)
        return out

    def close(self, usage: StreamUsage) -> bytes:
        out = (b"" if self.started else self._start()) + self._stop()
        reason, sequence = stop_reason(self.finish, self.matched, self.ctx.request,
                                       bool(self.calls))
        counts = anthropic_usage(usage.prompt_tokens, usage.completion_tokens,
                                 usage.cached_tokens, usage.cache_creation_tokens)
        out += sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": reason, "stop_sequence": sequence},
                                     "usage": counts})
        return out + sse("message_stop", {"type": "message_stop"})

    def fail(self, error: PointsmanError) -> bytes:
        out = b"" if self.started else self._start()
        return out + sse("error", error_body(error, http_status(error)))


def _part_tokens(part: Any) -> int:
    if not isinstance(part, Mapping):
        return 0
    if part.get("type") == "image_url":
        return IMAGE_TOKENS
    return estimate_text_tokens(str(part.get("text") or ""))


def _message_tokens(message: Mapping[str, Any]) -> int:
    content = message.get("content")
    total = MESSAGE_OVERHEAD_TOKENS
    if isinstance(content, str):
        total += estimate_text_tokens(content)
    elif isinstance(content, list):
        total += sum(_part_tokens(p) for p in content)
    for call in message.get("tool_calls") or ():
        function = call["function"]
        total += estimate_text_tokens(function["name"] + function["arguments"])
    for block in message.get("thinking_blocks") or ():
        total += estimate_text_tokens(block.get("thinking") or block.get("data") or "")
    return total


def count_tokens(body: Any) -> int:
    """The estimated input tokens of a Messages request (validated as ``to_chat`` does),
    for ``POST /v1/messages/count_tokens``: system and messages with their framing, and
    each tool definition as JSON."""
    if isinstance(body, Mapping) and "max_tokens" not in body:
        body = {**body, "max_tokens": 1}  # count_tokens takes no max_tokens
    ir = read_request(body, {})
    total = REPLY_PRIMING_TOKENS + sum(_message_tokens(m) for m in ir["messages"])
    for i, tool in enumerate(ir.get("tools") or ()):
        total += estimate_text_tokens(dumps(tool, f"tools[{i}]"))
    return total


class MessagesDoor:
    """The Anthropic Messages door (the :class:`~pointsman.doors.base.Door` protocol)."""

    name: DoorName = "messages"

    def to_chat(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        return read_request(body, headers)

    def answer(self, completion: Mapping[str, Any], ctx: AnswerContext) -> dict[str, Any]:
        return answer_message(completion, ctx)

    def encoder(self, ctx: AnswerContext) -> StreamEncoder:
        return MessagesEncoder(ctx)

    def error_body(self, error: PointsmanError, status: int) -> dict[str, Any]:
        return error_body(error, status)
