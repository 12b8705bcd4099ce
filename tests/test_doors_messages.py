"""The Anthropic Messages door: requests into the IR (and on to an Anthropic upstream),
answers and streams back out, checked against the anthropic SDK's own models and its own
stream accumulation."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

from pointsman.doors.base import PRIVATE, AnswerContext, Door, StreamUsage
from pointsman.doors.messages import MessagesDoor, count_tokens
from pointsman.errors import InputError, PointsmanError, StreamBrokenError, UpstreamTimeoutError
from pointsman.providers.anthropic_wire import to_anthropic
from pointsman.providers.openai_compat import strip_extensions

DOOR = MessagesDoor()
EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
EPHEMERAL = {"type": "ephemeral"}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
HEADERS = {"anthropic-beta": "interleaved-thinking-2025-05-14",
           "anthropic-version": "2023-06-01"}


def request() -> dict[str, Any]:
    """A request shaped like Claude Code's: cached system blocks, thinking, tools."""
    return {
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
        "system": [{"type": "text", "text": "You are a coding agent."},
                   {"type": "text", "text": "Project notes.", "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                {"type": "document", "title": "Notes",
                 "source": {"type": "text", "media_type": "text/plain", "data": "Bring a coat."}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C",
                 "cache_control": EPHEMERAL},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
        "tools": [{"name": "get_weather", "description": "Weather for a city",
                   "input_schema": SCHEMA, "cache_control": EPHEMERAL},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "metadata": {"user_id": "u-1"}, "thinking": {"type": "adaptive"},
        "service_tier": "auto", "context_management": {"edits": []},
    }


def ctx(**changes: Any) -> AnswerContext:
    return AnswerContext(model="claude-sonnet-4-5", request_id="req42",
                         request=changes.pop("request", {}), **changes)


# -- request → IR ----------------------------------------------------------------------------

def test_the_door_meets_the_protocol() -> None:
    door: Door = DOOR
    assert door.name == "messages"


def test_request_becomes_the_ir_with_its_extensions() -> None:
    ir = DOOR.to_chat(request(), HEADERS)
    assert ir["model"] == "claude-sonnet-4-5" and ir["max_tokens"] == 1024
    assert ir["messages"][:2] == [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "system", "content": [{"type": "text", "text": "Project notes.",
                                        "cache_control": EPHEMERAL}]}]
    user = ir["messages"][2]["content"]
    assert user[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert user[2]["image_url"] == {"url": "https://x.test/a.png"}
    assert user[3] == {"type": "text", "text": "Notes\n\nBring a coat."}
    assistant = ir["messages"][3]
    assert assistant["content"] == "Checking."
    assert assistant["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"}]
    assert ir["messages"][4] == {"role": "tool", "tool_call_id": "toolu_1", "content": [
        {"type": "text", "text": "18C", "cache_control": EPHEMERAL}]}
    assert ir["messages"][5] == {"role": "user",
                                 "content": [{"type": "text", "text": "And tomorrow?"}]}
    assert ir["tools"][0] == {"type": "function", "cache_control": EPHEMERAL, "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": SCHEMA}}
    assert ir["tools"][1] == request()["tools"][1]
    assert (ir["tool_choice"], ir["parallel_tool_calls"]) == ("auto", False)
    assert (ir["stop"], ir["temperature"], ir["top_p"], ir["top_k"]) == (["END"], 0.5, 0.9, 40)
    assert (ir["user"], ir["thinking"], ir["stream"]) == ("u-1", {"type": "adaptive"}, True)
    assert ir["stream_options"] == {"include_usage": True}
    assert "service_tier" not in ir and "context_management" not in ir
    assert ir[PRIVATE] == {"door": "messages", "ext": True,
                           "anthropic_beta": HEADERS["anthropic-beta"],
                           "anthropic_version": "2023-06-01"}


def test_a_plain_request_uses_no_extensions() -> None:
    body = {"model": "m", "max_tokens": 5, "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi"}]}
    ir = DOOR.to_chat(body, {})
    assert ir == {"model": "m", "max_tokens": 5, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        PRIVATE: {"door": "messages"}}


def test_a_system_turn_inside_messages_stays_in_place() -> None:
    """Claude Code 2.1 sends ``role: system`` turns inside ``messages`` (cache_control on
    their blocks): each becomes an IR system message where it stood."""
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "Notes.",
                                        "cache_control": {"type": "ephemeral"}}]}]}
    ir = DOOR.to_chat(body, {})
    assert ir["messages"][0] == {"role": "user", "content": "hi"}
    assert ir["messages"][1]["role"] == "system"
    assert ir["messages"][1]["content"][0]["text"] == "Notes."


@pytest.mark.parametrize("choice,expected", [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"},
     {"type": "function", "function": {"name": "get_weather"}})])
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    ir = DOOR.to_chat({**request(), "tool_choice": choice}, {})
    assert ir["tool_choice"] == expected
    assert "parallel_tool_calls" not in ir


def test_tool_errors_and_result_blocks() -> None:
    body = request()
    body["messages"][2]["content"] = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": "boom"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/b.png"}}]}]
    messages = DOOR.to_chat(body, {})["messages"]
    assert messages[4] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: boom"}
    assert messages[5]["content"][1]["type"] == "image_url"
    assert messages[-1]["role"] == "tool"  # no empty user message after the results


def test_round_trip_to_an_anthropic_upstream_keeps_what_matters() -> None:
    original = request()
    out = to_anthropic(DOOR.to_chat(original, HEADERS), 4096)
    assert PRIVATE not in out and "_pointsman" not in json.dumps(out)
    assert out["system"] == original["system"]
    assert out["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1",
         "content": [{"type": "text", "text": "18C", "cache_control": EPHEMERAL}]},
        {"type": "text", "text": "And tomorrow?"}]
    assert out["messages"][0]["content"][1]["source"] == original["messages"][0]["content"][1][
        "source"]
    assert out["tools"] == original["tools"]
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert (out["thinking"], out["top_k"], out["max_tokens"]) == ({"type": "adaptive"}, 40, 1024)
    assert (out["stop_sequences"], out["metadata"]) == (["END"], {"user_id": "u-1"})


def test_unsigned_thinking_is_not_replayed_to_anthropic() -> None:
    body = request()
    body["messages"][1]["content"][0]["signature"] = ""
    out = to_anthropic(DOOR.to_chat(body, {}), 4096)
    assert [b["type"] for b in out["messages"][1]["content"]] == [
        "redacted_thinking", "text", "tool_use"]


# -- validation ------------------------------------------------------------------------------

def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of a request, at every depth."""
    if path:
        yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*path, key))


CONFUSIONS: list[Any] = [5, "x", [], {}, None, True, _deep(1000)]
PATHS = list(_paths(request()))


def _replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(request())
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, p)) for p in PATHS])
def test_type_confusion_anywhere_is_an_input_error(path: tuple[Any, ...]) -> None:
    """Each field replaced by each wrong type: an InputError naming a field, or (where the
    value happens to be acceptable) an IR every later step takes without crashing."""
    for value in CONFUSIONS:
        body = _replaced(path, value)
        try:
            ir = DOOR.to_chat(body, HEADERS)
        except InputError as exc:
            assert (exc.param and exc.param in exc.message) or exc.param == "the body"
            continue
        to_anthropic(ir, 4096)
        strip_extensions(ir, "test")
        assert count_tokens(body) > 0


@pytest.mark.parametrize("field,value,param", [
    ("model", None, "model"), ("model", 5, "model"), ("max_tokens", 0, "max_tokens"),
    ("max_tokens", True, "max_tokens"), ("max_tokens", "9", "max_tokens"),
    ("messages", [], "messages"), ("messages", "hi", "messages"),
    ("messages", [{"role": "tool", "content": "x"}], "messages[0].role"),
    ("messages", [{"role": "system", "content": [{"type": "image"}]}],
     "messages[0].content[0].type"),
    ("messages", [{"role": "user", "content": []}], "messages[0].content"),
    ("messages", [{"role": "user", "content": [{"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "AA"}}]}],
     "messages[0].content[0].source.type"),
    ("system", [{"type": "image"}], "system[0].type"), ("temperature", "hot", "temperature"),
    ("thinking", {"type": "enabled"}, "thinking.budget_tokens"),
    ("thinking", {"type": "sometimes"}, "thinking.type"),
    ("tool_choice", {"type": "tool"}, "tool_choice.name"),
    ("stop_sequences", ["a", 1], "stop_sequences[1]"), ("metadata", {"user_id": 3},
                                                         "metadata.user_id")])
def test_invalid_fields_are_named(field: str, value: Any, param: str) -> None:
    with pytest.raises(InputError) as caught:
        DOOR.to_chat({**request(), field: value}, {})
    assert caught.value.param == param


def test_a_body_that_is_not_an_object_and_deep_tool_input() -> None:
    with pytest.raises(InputError):
        DOOR.to_chat([], {})  # type: ignore[arg-type]
    body = request()
    deep: Any = {}
    for _ in range(5000):
        deep = {"a": deep}
    body["messages"][1]["content"][3]["input"] = deep
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        DOOR.to_chat(body, {})


def test_count_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hello there, friend."}]}
    bare = count_tokens(body)
    assert bare == 3 + 4 + 5
    assert count_tokens({**body, "system": "Be brief."}) > bare
    assert count_tokens(request()) > count_tokens({**request(), "tools": []}) > bare
    with pytest.raises(InputError) as caught:
        count_tokens({**body, "messages": [{"role": "user", "content": 5}]})
    assert caught.value.param == "messages[0].content"


# -- answers -----------------------------------------------------------------------------------

def completion(message: dict[str, Any], finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "up",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {
                "cached_tokens": 60, "cache_creation_tokens": 10}}}


def test_answer_is_an_sdk_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pointsman.doors")
    message = {"role": "assistant", "content": "Sunny.", "reasoning_content": "hmm",
               "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
               "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
                   {"id": "call_2", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{broken"}}]}
    body = DOOR.answer(completion(message, "tool_calls"), ctx())
    parsed = Message.model_validate(body)
    assert parsed.id == "msg_req42" and parsed.model == "claude-sonnet-4-5"
    assert [b.type for b in parsed.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert body["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "s"}
    assert body["content"][2]["input"] == {"city": "Rome"}
    assert body["content"][3]["input"] == {}
    assert "not a JSON object" in caplog.text
    assert parsed.stop_reason == "tool_use"
    assert body["usage"] == {"input_tokens": 30, "output_tokens": 20,
                             "cache_read_input_tokens": 60, "cache_creation_input_tokens": 10}


@pytest.mark.parametrize("finish,matched,reason,sequence", [
    ("stop", None, "end_turn", None), ("stop", "END", "stop_sequence", "END"),
    ("stop", "OTHER", "end_turn", None), ("length", None, "max_tokens", None),
    ("content_filter", None, "refusal", None), (None, None, "end_turn", None)])
def test_answer_stop_reasons(finish: Any, matched: Any, reason: str, sequence: Any) -> None:
    extra = {"stop_reason": matched} if matched else {}
    body = DOOR.answer(completion({"role": "assistant", "content": "x"}, finish, **extra),
                       ctx(request={"stop_sequences": ["END"]}))
    parsed = Message.model_validate(body)
    assert (parsed.stop_reason, parsed.stop_sequence) == (reason, sequence)


def test_reasoning_without_signature_and_a_bare_completion() -> None:
    body = DOOR.answer(completion({"role": "assistant", "content": None,
                                   "reasoning_content": "thought"}), ctx())
    assert Message.model_validate(body).content[0].type == "thinking"
    assert body["content"] == [{"type": "thinking", "thinking": "thought", "signature": ""}]
    empty = DOOR.answer({}, ctx())
    assert Message.model_validate(empty).content == []
    assert empty["usage"]["input_tokens"] == 0


@pytest.mark.parametrize("status,kind", [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"),
    (500, "api_error"), (502, "api_error"), (503, "overloaded_error"), (504, "timeout_error"),
    (418, "invalid_request_error"), (599, "api_error")])
def test_error_body(status: int, kind: str) -> None:
    body = DOOR.error_body(PointsmanError("no luck"), status)
    assert body == {"type": "error", "error": {"type": kind, "message": "no luck"}}
    if kind != "request_too_large":  # documented by Anthropic, not in the SDK's union
        ErrorResponse.model_validate(body)


# -- streams -----------------------------------------------------------------------------------

def chunk(delta: dict[str, Any], finish: str | None = None, **choice: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]}


def call(index: int, arguments: str, call_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        out.update(id=call_id, type="function")
        out["function"]["name"] = "get_weather"
    return {"tool_calls": [out]}


STREAM = [
    [chunk({"role": "assistant", "content": ""})],
    [chunk({"reasoning_content": "Let me "}), chunk({"reasoning_content": "think."}),
     chunk({"thinking_blocks": [{"type": "thinking", "signature": "sig-9"}]})],
    [chunk({"content": "Checking "}), chunk({"content": "both."})],
    [chunk(call(0, "", "call_a")), chunk(call(0, "{\"city\":")), chunk(call(0, "\"Paris\"}"))],
    [chunk(call(1, "{\"city\":\"Rome\"}", "call_b")), chunk({}, "tool_calls")],
    [{"id": "c", "object": "chat.completion.chunk", "choices": [],
      "usage": {"prompt_tokens": 50, "completion_tokens": 9}}],
]
USAGE = StreamUsage(prompt_tokens=50, completion_tokens=9, cached_tokens=30,
                    cache_creation_tokens=5)


def events_of(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def sdk_client(raw: bytes) -> anthropic.Anthropic:
    """The real SDK over a transport that answers with ``raw`` as an SSE body."""
    def answer(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})
    return anthropic.Anthropic(api_key="k", base_url="http://door.test", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))


def encoded(batches: list[list[dict[str, Any]]], usage: StreamUsage = USAGE) -> bytes:
    encoder = DOOR.encoder(ctx(input_tokens_estimate=48))
    return b"".join(encoder.encode(b) for b in batches) + encoder.close(usage)


def test_stream_events_validate_against_the_sdk() -> None:
    events = events_of(encoded(STREAM))
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta",
                                                                      "message_stop"]
    for name, data in events:
        assert data["type"] == name
        if name != "ping":
            EVENTS.validate_python(data)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 48
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use", "tool_use"]
    assert names.count("content_block_stop") == 4
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 15, "output_tokens": 9,
                              "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5}


def test_the_sdk_accumulates_the_stream() -> None:
    with sdk_client(encoded(STREAM)) as client, client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert final.id == "msg_req42"
    assert [b.to_dict() for b in final.content] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-9"},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}}]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (15, 9)
    assert final.usage.cache_read_input_tokens == 30


def test_stream_with_a_stop_sequence_and_an_empty_stream() -> None:
    encoder = DOOR.encoder(ctx(request={"stop_sequences": ["END"]}))
    raw = encoder.encode([chunk({"content": "Hi"}), chunk({}, "stop", stop_reason="END")])
    raw += encoder.close(StreamUsage(3, 1))
    with sdk_client(raw) as client, client.messages.stream(model="m", max_tokens=10, messages=[
            {"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert final.content[0].type == "text"
    empty = events_of(DOOR.encoder(ctx()).close(StreamUsage(3, 0)))
    assert [n for n, _ in empty] == ["message_start", "ping", "message_delta", "message_stop"]
    assert empty[2][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("error,kind", [
    (StreamBrokenError("upstream went away"), "api_error"),
    (UpstreamTimeoutError("too slow"), "timeout_error")])
def test_a_failed_stream_is_an_sdk_error(error: PointsmanError, kind: str) -> None:
    encoder = DOOR.encoder(ctx())
    raw = encoder.encode([chunk({"content": "partial"})]) + encoder.fail(error)
    last = events_of(raw)[-1]
    assert last == ("error", {"type": "error", "error": {"type": kind,
                                                         "message": error.message}})
    with sdk_client(raw) as client, pytest.raises(anthropic.APIStatusError, match=error.message), \
            client.messages.stream(model="m", max_tokens=10,
                                   messages=[{"role": "user", "content": "hi"}]) as stream:
        stream.get_final_message()
