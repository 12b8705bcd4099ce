"""The three wire formats the upstream stub speaks: OpenAI Chat Completions, Anthropic
Messages and the OpenAI Responses API. Each turns a
:class:`~pointsman.testing.stub_state.Plan` into a body or into a list of server-sent events
(``(is_token, bytes)``, so the server can pace tokens)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.responses import JSONResponse, Response

from pointsman.testing.stub_state import (
    Behavior,
    Plan,
    content_text,
    prompt_tokens,
    text_plan,
    tool_plan,
)

Event = tuple[bool, bytes]
CREATED = 1_700_000_000


class WireFormat(Protocol):
    def error(self, status: int, message: str) -> Response: ...

    def check(self, body: Mapping[str, Any], headers: Mapping[str, str],
              api_key: str | None) -> Response | None: ...

    def plan(self, body: Mapping[str, Any], behavior: Behavior, number: int) -> Plan: ...

    def complete(self, body: Mapping[str, Any], plan: Plan, number: int,
                 behavior: Behavior) -> dict[str, Any]: ...

    def events(self, body: Mapping[str, Any], plan: Plan, number: int,
               behavior: Behavior) -> list[Event]: ...


def _stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [s for s in value or () if isinstance(s, str)]


def _last_user(messages: Any) -> tuple[str, bool]:
    """The last user message's text, and whether the conversation ends with a user turn
    (a tool result does not count as one)."""
    if not isinstance(messages, list) or not messages:
        return "", False
    text, ends_with_user = "", False
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list) and any(isinstance(p, dict) and p.get("type")
                                                 == "tool_result" for p in content):
                continue
            text, ends_with_user = content_text(content), i == len(messages) - 1
    return text, ends_with_user


def _cut(events: list[Event], behavior: Behavior, terminator: list[Event],
         error: bytes) -> list[Event]:
    """Apply ``cut_after``: keep the events up to that many tokens, then stop."""
    if behavior.cut_after is None:
        return events + terminator
    kept, tokens = [], 0
    for event in events:
        if event[0]:
            if tokens == behavior.cut_after:
                break
            tokens += 1
        kept.append(event)
    if behavior.cut_mode == "garbage":
        kept.append((False, b"data: {not json\n\n"))
    elif behavior.cut_mode == "error":
        kept.append((False, error))
    return kept


def _retry_headers(status: int, behavior: Behavior) -> dict[str, str]:
    if behavior.retry_after is not None and status in (429, 503, 529):
        return {"retry-after": behavior.retry_after}
    return {}


def injected_status(wire: WireFormat, status: int, behavior: Behavior) -> Response:
    """The error answer for a status the behaviour injects, in ``wire``'s format."""
    response = wire.error(status, f"stub: injected status {status}")
    response.headers.update(_retry_headers(status, behavior))
    return response


class OpenAIWire:
    """``POST /v1/chat/completions``."""

    def error(self, status: int, message: str) -> Response:
        fallback = "server_error" if status >= 500 else "invalid_request_error"
        kind = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status, fallback)
        return JSONResponse({"error": {"message": message, "type": kind, "code": kind}}, status)

    def check(self, body: Mapping[str, Any], headers: Mapping[str, str],
              api_key: str | None) -> Response | None:
        if api_key is not None and headers.get("authorization") != f"Bearer {api_key}":
            return self.error(401, "Incorrect API key provided.")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self.error(400, "'messages' must be a non-empty array")
        if body.get("stream_options") and not body.get("stream"):
            return self.error(400, "stream_options is only allowed when stream is true")
        return None

    def plan(self, body: Mapping[str, Any], behavior: Behavior, number: int) -> Plan:
        model = str(body.get("model"))
        messages = body["messages"]
        text, ends_with_user = _last_user(messages)
        prompt = prompt_tokens(messages)
        tools = body.get("tools") or []
        if behavior.tool_call and tools and ends_with_user:
            function = tools[0].get("function") or {}
            return tool_plan(str(function.get("name")), function.get("parameters"), text,
                             prompt, f"call_stub_{number}")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        return text_plan(model, text, behavior, prompt, limit, _stops(body.get("stop")))

    @staticmethod
    def _finish(plan: Plan) -> str:
        return {"tool": "tool_calls", "stop_sequence": "stop"}.get(plan.finish, plan.finish)

    @staticmethod
    def _usage(plan: Plan, behavior: Behavior) -> dict[str, Any]:
        prompt = plan.prompt_tokens + behavior.cached_tokens
        completion = plan.completion_tokens + behavior.reasoning_tokens
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if behavior.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": behavior.cached_tokens}
        if behavior.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": behavior.reasoning_tokens}
        return usage

    @staticmethod
    def _logprobs(body: Mapping[str, Any], pieces: Sequence[str],
                  behavior: Behavior) -> dict[str, Any] | None:
        """``choices[].logprobs`` when the request asked for them."""
        if not body.get("logprobs"):
            return None
        return {"content": [{"token": p, "logprob": behavior.logprob,
                             "bytes": list(p.encode()), "top_logprobs": []} for p in pieces],
                "refusal": None}

    def complete(self, body: Mapping[str, Any], plan: Plan, number: int,
                 behavior: Behavior) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": plan.text or None}
        if plan.tool_name:
            message["tool_calls"] = [{"id": plan.tool_id, "type": "function", "function": {
                "name": plan.tool_name, "arguments": "".join(plan.pieces)}}]
        return {"id": f"chatcmpl-stub-{number}", "object": "chat.completion",
                "created": CREATED, "model": body.get("model"),
                "choices": [{"index": 0, "message": message,
                             "logprobs": self._logprobs(body, plan.pieces, behavior),
                             "finish_reason": self._finish(plan)}],
                "usage": self._usage(plan, behavior)}

    def events(self, body: Mapping[str, Any], plan: Plan, number: int,
               behavior: Behavior) -> list[Event]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            logprobs = self._logprobs(body, [delta["content"]], behavior) \
                if delta.get("content") else None
            if logprobs is not None:
                choice["logprobs"] = logprobs
            return _sse({"id": f"chatcmpl-stub-{number}", "object": "chat.completion.chunk",
                         "created": CREATED, "model": body.get("model"), "choices": [choice]})

        events: list[Event] = [(False, chunk({"role": "assistant", "content": ""}))]
        if plan.tool_name:
            events.append((False, chunk({"tool_calls": [{
                "index": 0, "id": plan.tool_id, "type": "function",
                "function": {"name": plan.tool_name, "arguments": ""}}]})))
            events += [(True, chunk({"tool_calls": [{"index": 0, "function": {
                "arguments": piece}}]})) for piece in plan.pieces]
        else:
            events += [(True, chunk({"content": piece})) for piece in plan.pieces]
        events.append((False, chunk({}, self._finish(plan))))
        tail: list[Event] = []
        if behavior.usage and (body.get("stream_options") or {}).get("include_usage"):
            tail.append((False, _sse({"id": f"chatcmpl-stub-{number}",
                                      "object": "chat.completion.chunk", "created": CREATED,
                                      "model": body.get("model"), "choices": [],
                                      "usage": self._usage(plan, behavior)})))
        tail.append((False, b"data: [DONE]\n\n"))
        error = _sse({"error": {"message": "stub: overloaded mid-stream",
                                "type": "server_error", "code": None}})
        return _cut(events, behavior, tail, error)


def _sse(data: Mapping[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class AnthropicWire:
    """``POST /v1/messages``."""

    def error(self, status: int, message: str) -> Response:
        kind = {400: "invalid_request_error", 401: "authentication_error",
                404: "not_found_error", 429: "rate_limit_error",
                529: "overloaded_error"}.get(status, "api_error")
        return JSONResponse({"type": "error", "error": {"type": kind, "message": message}},
                            status)

    def check(self, body: Mapping[str, Any], headers: Mapping[str, str],
              api_key: str | None) -> Response | None:
        if api_key is not None and headers.get("x-api-key") != api_key:
            return self.error(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        if not isinstance(body.get("max_tokens"), int):
            return self.error(400, "max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(400, "messages: at least one message is required")
        if any(not isinstance(m, dict) or m.get("role") not in ("user", "assistant")
               for m in messages):
            return self.error(400, "messages: roles must be 'user' or 'assistant'")
        return None

    def plan(self, body: Mapping[str, Any], behavior: Behavior, number: int) -> Plan:
        messages = body["messages"]
        text, ends_with_user = _last_user(messages)
        prompt = prompt_tokens(messages, body.get("system"))
        tools = body.get("tools") or []
        if behavior.tool_call and tools and ends_with_user:
            return tool_plan(str(tools[0].get("name")), tools[0].get("input_schema"), text,
                             prompt, f"toolu_stub_{number}")
        return text_plan(str(body.get("model")), text, behavior, prompt, body["max_tokens"],
                         _stops(body.get("stop_sequences")))

    @staticmethod
    def _stop_reason(plan: Plan) -> str:
        return {"tool": "tool_use", "stop": "end_turn", "length": "max_tokens"}.get(
            plan.finish, plan.finish)

    def complete(self, body: Mapping[str, Any], plan: Plan, number: int,
                 behavior: Behavior) -> dict[str, Any]:
        if plan.tool_name:
            content: list[dict[str, Any]] = [
                {"type": "text", "text": f"Calling {plan.tool_name}."},
                {"type": "tool_use", "id": plan.tool_id, "name": plan.tool_name,
                 "input": json.loads("".join(plan.pieces))}]
        else:
            content = [{"type": "text", "text": plan.text}]
        return {"id": f"msg_stub_{number}", "type": "message", "role": "assistant",
                "model": body.get("model"), "content": content,
                "stop_reason": self._stop_reason(plan), "stop_sequence": plan.stop_sequence,
                "usage": {**self._input_usage(plan, behavior),
                          "output_tokens": plan.completion_tokens + behavior.reasoning_tokens}}

    @staticmethod
    def _input_usage(plan: Plan, behavior: Behavior) -> dict[str, int]:
        """``input_tokens`` (uncached) and the cache fields, when non-zero."""
        usage = {"input_tokens": plan.prompt_tokens}
        if behavior.cached_tokens:
            usage["cache_read_input_tokens"] = behavior.cached_tokens
        if behavior.cache_creation_tokens:
            usage["cache_creation_input_tokens"] = behavior.cache_creation_tokens
        return usage

    def events(self, body: Mapping[str, Any], plan: Plan, number: int,
               behavior: Behavior) -> list[Event]:
        start = {"type": "message_start", "message": {
            "id": f"msg_stub_{number}", "type": "message", "role": "assistant", "content": [],
            "model": body.get("model"), "stop_reason": None, "stop_sequence": None,
            "usage": {**self._input_usage(plan, behavior), "output_tokens": 1}}}
        events: list[Event] = [(False, _sse(start, "message_start")),
                               (False, _sse({"type": "ping"}, "ping"))]
        if plan.tool_name:
            events += self._tool_blocks(plan)
        else:
            events += self._block(0, {"type": "text", "text": ""},
                                  [{"type": "text_delta", "text": p} for p in plan.pieces])
        end = [(False, _sse({"type": "message_delta", "delta": {
                   "stop_reason": self._stop_reason(plan), "stop_sequence": plan.stop_sequence},
                   "usage": {"output_tokens": plan.completion_tokens + behavior.reasoning_tokens}},
                   "message_delta")),
               (False, _sse({"type": "message_stop"}, "message_stop"))]
        error = _sse({"type": "error", "error": {"type": "overloaded_error",
                                                 "message": "stub: overloaded mid-stream"}},
                     "error")
        return _cut(events, behavior, end, error)

    def _tool_blocks(self, plan: Plan) -> list[Event]:
        preface = self._block(0, {"type": "text", "text": ""},
                              [{"type": "text_delta", "text": f"Calling {plan.tool_name}."}])
        preface = [(False, data) for _, data in preface]  # the preface is not counted
        block: dict[str, Any] = {"type": "tool_use", "id": plan.tool_id,
                                 "name": plan.tool_name, "input": {}}
        return preface + self._block(1, block, [{"type": "input_json_delta",
                                                 "partial_json": p} for p in plan.pieces])

    @staticmethod
    def _block(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[Event]:
        events: list[Event] = [(False, _sse({"type": "content_block_start", "index": index,
                                             "content_block": block}, "content_block_start"))]
        events += [(True, _sse({"type": "content_block_delta", "index": index, "delta": d},
                               "content_block_delta")) for d in deltas]
        events.append((False, _sse({"type": "content_block_stop", "index": index},
                                   "content_block_stop")))
        return events


KNOWN_RESPONSES_FIELDS = frozenset({
    "model", "input", "instructions", "stream", "stream_options", "tools", "tool_choice",
    "parallel_tool_calls", "max_output_tokens", "max_tool_calls", "temperature", "top_p",
    "top_logprobs", "text", "reasoning", "include", "store", "user", "metadata",
    "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "service_tier",
    "previous_response_id", "conversation", "prompt", "truncation", "background"})
LOGPROBS_INCLUDE = "message.output_text.logprobs"


class ResponsesWire(OpenAIWire):
    """``POST /v1/responses``: the OpenAI Responses API (errors and auth as OpenAI's).

    A text answer is one ``message`` output item; a tool call one ``function_call`` item;
    with ``reasoning_tokens`` a ``reasoning`` item comes first, whose summary has text
    when the request asks for ``reasoning.summary``. The answer stops at
    ``max_output_tokens`` with status ``incomplete`` (a stream then ends with
    ``response.incomplete``); otherwise a stream ends with ``response.completed``.
    """

    def check(self, body: Mapping[str, Any], headers: Mapping[str, str],
              api_key: str | None) -> Response | None:
        if api_key is not None and headers.get("authorization") != f"Bearer {api_key}":
            return self.error(401, "Incorrect API key provided.")
        unknown = sorted(set(body) - KNOWN_RESPONSES_FIELDS)
        if unknown:
            return self.error(400, f"Unknown parameter: '{unknown[0]}'.")
        given = body.get("input")
        if not isinstance(given, str) and (not isinstance(given, list) or not given):
            return self.error(400, "'input' must be a string or a non-empty array")
        if body.get("stream_options") and not body.get("stream"):
            return self.error(400, "stream_options is only allowed when stream is true")
        return None

    @staticmethod
    def _input(body: Mapping[str, Any]) -> list[Any]:
        given = body["input"]
        return [{"role": "user", "content": given}] if isinstance(given, str) else given

    def plan(self, body: Mapping[str, Any], behavior: Behavior, number: int) -> Plan:
        items = self._input(body)
        text, ends_with_user = _last_user(items)
        prompt = prompt_tokens(items, body.get("instructions"))
        tools = [t for t in body.get("tools") or () if isinstance(t, dict)
                 and t.get("type") == "function"]
        if behavior.tool_call and tools and ends_with_user:
            return tool_plan(str(tools[0].get("name")), tools[0].get("parameters"), text,
                             prompt, f"call_stub_{number}")
        return text_plan(str(body.get("model")), text, behavior, prompt,
                         body.get("max_output_tokens"), [])

    @staticmethod
    def _responses_usage(plan: Plan, behavior: Behavior) -> dict[str, Any]:
        prompt = plan.prompt_tokens + behavior.cached_tokens + behavior.cache_creation_tokens
        completion = plan.completion_tokens + behavior.reasoning_tokens
        return {"input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": behavior.cached_tokens,
                                         "cache_write_tokens": behavior.cache_creation_tokens},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": behavior.reasoning_tokens},
                "total_tokens": prompt + completion}

    @staticmethod
    def _token_logprobs(body: Mapping[str, Any], pieces: Sequence[str], behavior: Behavior,
                        with_bytes: bool) -> list[dict[str, Any]]:
        if LOGPROBS_INCLUDE not in (body.get("include") or ()):
            return []
        return [{"token": p, "logprob": behavior.logprob, "top_logprobs": [],
                 **({"bytes": list(p.encode())} if with_bytes else {})} for p in pieces]

    def _summary(self, body: Mapping[str, Any]) -> str:
        """The reasoning summary's text: only when the request asks for summaries."""
        reasoning = body.get("reasoning")
        if not isinstance(reasoning, dict) or not reasoning.get("summary"):
            return ""
        return f"Thinking about: {_last_user(self._input(body))[0][:40]}"

    def _items(self, body: Mapping[str, Any], plan: Plan, number: int,
               behavior: Behavior) -> list[dict[str, Any]]:
        """The finished output items."""
        items: list[dict[str, Any]] = []
        if behavior.reasoning_tokens:
            summary = self._summary(body)
            items.append({"type": "reasoning", "id": f"rs_stub_{number}", "summary": [
                {"type": "summary_text", "text": summary}] if summary else []})
        if plan.tool_name:
            items.append({"type": "function_call", "id": f"fc_stub_{number}",
                          "call_id": plan.tool_id, "name": plan.tool_name,
                          "arguments": "".join(plan.pieces), "status": "completed"})
            return items
        text = {"type": "output_text", "text": plan.text, "annotations": [],
                "logprobs": self._token_logprobs(body, plan.pieces, behavior, True)}
        items.append({"type": "message", "id": f"msg_stub_{number}", "status": "completed",
                      "role": "assistant", "content": [text]})
        return items

    def _response(self, body: Mapping[str, Any], number: int, status: str,
                  output: list[dict[str, Any]], usage: dict[str, Any] | None
                  ) -> dict[str, Any]:
        tools = [{"strict": True, **t} if t.get("type") == "function" else t
                 for t in body.get("tools") or () if isinstance(t, dict)]
        return {"id": f"resp_stub_{number}", "object": "response", "created_at": CREATED,
                "status": status, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"}
                if status == "incomplete" else None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": body.get("model"), "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": None, "reasoning": body.get("reasoning") or {},
                "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
                "text": body.get("text") or {"format": {"type": "text"}},
                "tool_choice": body.get("tool_choice", "auto"), "tools": tools,
                "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": usage,
                "user": body.get("user"), "metadata": body.get("metadata") or {}}

    def complete(self, body: Mapping[str, Any], plan: Plan, number: int,
                 behavior: Behavior) -> dict[str, Any]:
        status = "incomplete" if plan.finish == "length" else "completed"
        return self._response(body, number, status, self._items(body, plan, number, behavior),
                              self._responses_usage(plan, behavior))

    def events(self, body: Mapping[str, Any], plan: Plan, number: int,
               behavior: Behavior) -> list[Event]:
        started = self._response(body, number, "in_progress", [], None)
        events: list[tuple[bool, dict[str, Any]]] = [
            (False, {"type": "response.created", "response": started}),
            (False, {"type": "response.in_progress", "response": started})]
        for index, item in enumerate(self._items(body, plan, number, behavior)):
            events += self._item_events(body, index, item, plan, behavior)
        final = self.complete(body, plan, number, behavior)
        if not behavior.usage:
            final["usage"] = None
        end = [(False, {"type": f"response.{final['status']}", "response": final})]
        error = {"type": "error", "code": "server_error", "param": None,
                 "message": "stub: overloaded mid-stream", "sequence_number": len(events) + 1}
        numbered = [(token, _sse({**event, "sequence_number": i}, str(event["type"])))
                    for i, (token, event) in enumerate(events + end)]
        return _cut(numbered[:len(events)], behavior, numbered[len(events):],
                    _sse(error, "error"))

    def _item_events(self, body: Mapping[str, Any], index: int, item: dict[str, Any],
                     plan: Plan, behavior: Behavior) -> list[tuple[bool, dict[str, Any]]]:
        """output_item.added, the item's own events, output_item.done."""
        kind = item["type"]
        if kind == "reasoning":
            middle = self._summary_events(index, item)
            added = {**item, "summary": []}
        elif kind == "function_call":
            middle = self._call_events(index, item, plan)
            added = {**item, "arguments": "", "status": "in_progress"}
        else:
            middle = self._text_events(body, index, item, plan, behavior)
            added = {**item, "content": [], "status": "in_progress"}
        return [(False, {"type": "response.output_item.added", "output_index": index,
                         "item": added}), *middle,
                (False, {"type": "response.output_item.done", "output_index": index,
                         "item": item})]

    @staticmethod
    def _summary_events(index: int, item: dict[str, Any]) -> list[tuple[bool, dict[str, Any]]]:
        out: list[tuple[bool, dict[str, Any]]] = []
        where = {"item_id": item["id"], "output_index": index}
        for i, part in enumerate(item["summary"]):
            at = {**where, "summary_index": i}
            out += [(False, {"type": "response.reasoning_summary_part.added", **at,
                             "part": {"type": "summary_text", "text": ""}}),
                    (False, {"type": "response.reasoning_summary_text.delta", **at,
                             "delta": part["text"]}),
                    (False, {"type": "response.reasoning_summary_text.done", **at,
                             "text": part["text"]}),
                    (False, {"type": "response.reasoning_summary_part.done", **at,
                             "part": part})]
        return out

    @staticmethod
    def _call_events(index: int, item: dict[str, Any],
                     plan: Plan) -> list[tuple[bool, dict[str, Any]]]:
        where = {"item_id": item["id"], "output_index": index}
        deltas: list[tuple[bool, dict[str, Any]]] = [
            (True, {"type": "response.function_call_arguments.delta", **where, "delta": p})
            for p in plan.pieces]
        return [*deltas, (False, {"type": "response.function_call_arguments.done", **where,
                                  "name": item["name"], "arguments": item["arguments"]})]

    def _text_events(self, body: Mapping[str, Any], index: int, item: dict[str, Any],
                     plan: Plan, behavior: Behavior) -> list[tuple[bool, dict[str, Any]]]:
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        part = item["content"][0]
        empty = {**part, "text": "", "logprobs": []}
        deltas: list[tuple[bool, dict[str, Any]]] = [
            (True, {"type": "response.output_text.delta", **where, "delta": p,
                    "logprobs": self._token_logprobs(body, [p], behavior, False)})
            for p in plan.pieces]
        return [(False, {"type": "response.content_part.added", **where, "part": empty}),
                *deltas,
                (False, {"type": "response.output_text.done", **where, "text": part["text"],
                         "logprobs": self._token_logprobs(body, plan.pieces, behavior,
                                                          False)}),
                (False, {"type": "response.content_part.done", **where, "part": part})]


openai_wire = OpenAIWire()
anthropic_wire = AnthropicWire()
responses_wire = ResponsesWire()
