"""The Anthropic Messages adapter: translation both ways, checked on what the stub received
and on what came back, over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pytest

from pointsman.errors import (
    InputError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamMisconfiguredError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from pointsman.providers.anthropic import AnthropicProvider
from pointsman.providers.anthropic_wire import StreamTranslator, to_anthropic, to_completion
from pointsman.providers.base import ChatCall, Provider, Timeouts
from pointsman.testing import UpstreamStub
from provider_support import collect, run_with

T = TypeVar("T")
KEY = "sk-ant-test-0a1b2c3d4e"
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": "24C clear"},
]


def run(base_url: str, use: Callable[[Provider], Awaitable[T]], key: str | None = KEY) -> T:
    return run_with(lambda: AnthropicProvider("anthropic", base_url, api_key=key,
                                              default_max_tokens=321), use)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- translation, pure ------------------------------------------------------------------

def test_request_translation_of_system_tools_and_tool_results() -> None:
    body = {"model": "claude-x", "messages": CONVERSATION, "tools": [WEATHER],
            "tool_choice": "required", "stop": "END", "temperature": 1.7, "top_p": 0.9,
            "user": "u-1", "n": 1, "seed": 3}
    out = to_anthropic(body, 1024)
    assert out["system"] == "You are terse."
    assert out["max_tokens"] == 1024
    assert out["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                             "input_schema": WEATHER["function"]["parameters"]}]
    assert out["tool_choice"] == {"type": "any"}
    assert out["stop_sequences"] == ["END"]
    assert (out["temperature"], out["top_p"]) == (1.0, 0.9)
    assert out["metadata"] == {"user_id": "u-1"}
    assert "n" not in out and "seed" not in out
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}}]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "24C clear"}]


@pytest.mark.parametrize("choice,parallel,expected", [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None,
     {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice_translation(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    body = {"model": "c", "messages": [user("hi")], "tools": [WEATHER], "tool_choice": choice,
            "parallel_tool_calls": parallel, "max_completion_tokens": 9}
    out = to_anthropic(body, 1024)
    assert out["tool_choice"] == expected
    assert out["max_tokens"] == 9


def test_images_json_mode_and_bad_arguments() -> None:
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
             {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]
    out = to_anthropic({"model": "c", "messages": [{"role": "user", "content": parts}],
                        "response_format": {"type": "json_object"}}, 10)
    content = out["messages"][0]["content"]
    assert content[1]["source"] == {"type": "base64", "media_type": "image/png", "data": "AAAA"}
    assert content[2]["source"] == {"type": "url", "url": "https://example.com/a.jpg"}
    assert "JSON object" in out["system"]
    broken = [user("x"), {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]
    with pytest.raises(InputError, match="not JSON"):
        to_anthropic({"model": "c", "messages": broken}, 10)


@pytest.mark.parametrize("reason,finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                           ("max_tokens", "length"), ("tool_use", "tool_calls")])
def test_response_translation_of_stop_reasons(reason: str, finish: str) -> None:
    data = {"id": "msg_1", "model": "c", "stop_reason": reason,
            "content": [{"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                         "input": {"city": "Paris"}}],
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7}}
    out = to_completion(data)
    choice = out["choices"][0]
    assert choice["finish_reason"] == finish
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
    assert out["usage"] == {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22,
                            "prompt_tokens_details": {"cached_tokens": 5,
                                                      "cache_creation_tokens": 0}}


def test_stream_translator_refuses_malformed_events() -> None:
    translator = StreamTranslator("c", include_usage=True)
    with pytest.raises(StreamBrokenError, match="malformed"):
        translator.feed({"type": "content_block_delta", "index": 0})


# -- against the stub ---------------------------------------------------------------------

def test_complete_sends_a_messages_body_and_translates_the_answer(
        upstream: UpstreamStub) -> None:
    body = {"model": "claude-a", "messages": [{"role": "system", "content": "Be brief."},
                                               user("Hello there")]}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    sent = upstream.last_request("claude-a")
    assert sent == {"model": "claude-a", "max_tokens": 321, "system": "Be brief.",
                    "messages": [{"role": "user",
                                  "content": [{"type": "text", "text": "Hello there"}]}]}
    headers = upstream.last_headers("claude-a")
    assert (headers["x-api-key"], headers["anthropic-version"]) == (KEY, "2023-06-01")
    choice = result.body["choices"][0]
    assert choice["message"]["content"] == "stub answer from claude-a: Hello there"
    assert choice["finish_reason"] == "stop"
    assert result.body["object"] == "chat.completion"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2 + 1 + 2, 6)


def test_base_url_with_or_without_v1(upstream: UpstreamStub) -> None:
    body = {"model": "claude-a", "messages": [user("hi")]}
    for base in (upstream.url, upstream.base_url):
        result = run(base, lambda p: p.complete(ChatCall(body)))
        assert result.body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("extra,finish,text", [
    ({"stop": ["France"]}, "stop", "stub answer from claude-s: Capital of"),
    ({"max_tokens": 3}, "length", "stub answer from")])
def test_stop_sequences_and_max_tokens(upstream: UpstreamStub, extra: dict[str, Any],
                                       finish: str, text: str) -> None:
    body = {"model": "claude-s", "messages": [user("Capital of France?")], **extra}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert result.body["choices"][0]["finish_reason"] == finish
    assert result.body["choices"][0]["message"]["content"] == text


def test_tool_call_round_trip(upstream: UpstreamStub) -> None:
    upstream.behave("claude-t", tool_call=True)
    body = {"model": "claude-t", "messages": [user("Weather in Paris?")], "tools": [WEATHER],
            "tool_choice": "auto"}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    sent = upstream.last_request("claude-t") or {}
    assert sent["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "auto"}
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Weather in Paris?"}
    # send the tool's result back: the stub sees a tool_result block and answers in text
    follow = {**body, "messages": [*body["messages"], choice["message"],
                                   {"role": "tool", "tool_call_id": call["id"],
                                    "content": "18C"}]}
    again = run(upstream.base_url, lambda p: p.complete(ChatCall(follow)))
    sent = upstream.last_request("claude-t") or {}
    assert sent["messages"][1]["content"][-1]["type"] == "tool_use"
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": call["id"], "content": "18C"}]
    assert again.body["choices"][0]["finish_reason"] == "stop"


def test_stream_text_with_final_usage_chunk(upstream: UpstreamStub) -> None:
    body = {"model": "claude-a", "messages": [user("Hello there")], "stream": True,
            "stream_options": {"include_usage": True}}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(body)))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"])
    assert text == "stub answer from claude-a: Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 6,
                                   "total_tokens": 9}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "stream_options" not in (upstream.last_request("claude-a") or {})


def test_stream_tool_call_deltas_like_openai(upstream: UpstreamStub) -> None:
    upstream.behave("claude-t", tool_call=True)
    body = {"model": "claude-t", "messages": [user("Weather in Rome?")], "tools": [WEATHER]}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(body)))
    deltas = [d for c in chunks if c["choices"]
              for d in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert deltas[0]["index"] == 0
    assert deltas[0]["id"].startswith("toolu_")
    assert deltas[0]["function"]["name"] == "get_weather"
    assert {d["index"] for d in deltas} == {0}
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert json.loads(arguments) == {"city": "Weather in Rome?"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in chunks[-1]


def test_529_overloaded_and_429_retry_after(upstream: UpstreamStub) -> None:
    upstream.behave("claude-e", statuses=[529, 429], retry_after=4)
    body = {"model": "claude-e", "messages": [user("hi")]}
    with pytest.raises(UpstreamServerError) as overloaded:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert overloaded.value.status == 529
    assert overloaded.value.model == "claude-e"
    with pytest.raises(RateLimitedError) as limited:
        run(upstream.base_url, lambda p: collect(p, ChatCall(body)))
    assert limited.value.retry_after == 4.0


def test_bad_key_rejected_without_leaking_it(upstream: UpstreamStub,
                                             caplog: pytest.LogCaptureFixture) -> None:
    upstream.require_key("sk-ant-another")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UpstreamMisconfiguredError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall({"model": "claude-k",
                                                              "messages": [user("hi")]})))
    assert caught.value.status == 401 and caught.value.retryable
    assert "upstream 127.0.0.1 refused pointsman's API key (401)" in caught.value.message
    assert "invalid x-api-key" in caught.value.message
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text


def test_hang_times_out_at_the_first_token(upstream: UpstreamStub) -> None:
    upstream.behave("claude-h", hang=True)
    body = {"model": "claude-h", "messages": [user("hi")]}
    with pytest.raises(UpstreamTimeoutError, match="first-token"):
        run(upstream.base_url, lambda p: collect(p, ChatCall(body, Timeouts(1, 0.3, 5))))


@pytest.mark.parametrize("cut,mode,match", [(0, "reset", "broke"), (2, "reset", "broke"),
                                            (2, "end", "without message_stop"),
                                            (1, "garbage", "malformed"),
                                            (1, "error", "overloaded mid-stream")])
def test_cut_streams_are_broken(upstream: UpstreamStub, cut: int, mode: str,
                                match: str) -> None:
    upstream.behave("claude-c", cut_after=cut, cut_mode=mode)
    got: list[Mapping[str, Any]] = []
    body = {"model": "claude-c", "messages": [user("Hello there friend")]}
    with pytest.raises(StreamBrokenError, match=match):
        run(upstream.base_url, lambda p: collect(p, ChatCall(body), got))
    tokens = [c for c in got if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(tokens) == cut


# -- IR extensions (thinking, prompt cache, server tools, the door's headers) --------------

EPHEMERAL = {"type": "ephemeral"}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def extended_body(model: str) -> dict[str, Any]:
    """An IR body as the Messages door builds it, every extension in use."""
    return {
        "model": model, "max_tokens": 50, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 5, "tools": [{**WEATHER, "cache_control": EPHEMERAL}, WEB_SEARCH],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief.",
                                            "cache_control": EPHEMERAL}]},
            user("Weather in Paris?"),
            {"role": "assistant", "content": None,
             "thinking_blocks": [{"type": "thinking", "thinking": "Use the tool.",
                                  "signature": "sig-1"}],
             "tool_calls": [{"id": "toolu_1", "type": "function", "function": {
                 "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1",
             "content": [{"type": "text", "text": "18C", "cache_control": EPHEMERAL}]}],
        "_pointsman": {"door": "messages", "ext": True, "anthropic_beta": "beta-a,beta-b",
                       "anthropic_version": "2023-06-01"}}


def test_extensions_reach_the_upstream_and_the_door_headers_ride_along(
        upstream: UpstreamStub) -> None:
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(extended_body("claude-x"))))
    sent = upstream.last_request("claude-x") or {}
    assert "_pointsman" not in sent
    assert sent["system"] == [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    assert sent["messages"][1]["content"][0] == {"type": "thinking", "thinking": "Use the tool.",
                                                 "signature": "sig-1"}
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1",
                                               "content": [{"type": "text", "text": "18C",
                                                            "cache_control": EPHEMERAL}]}]
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    assert sent["tools"][1] == WEB_SEARCH
    assert (sent["thinking"], sent["top_k"]) == ({"type": "enabled", "budget_tokens": 1024}, 5)
    headers = upstream.last_headers("claude-x")
    assert (headers["anthropic-beta"], headers["x-api-key"]) == ("beta-a,beta-b", KEY)
    assert result.body["choices"][0]["finish_reason"] == "stop"
    # the next call without the door's facts goes out with the adapter's own headers
    run(upstream.base_url, lambda p: p.complete(ChatCall({"model": "claude-x",
                                                          "messages": [user("hi")]})))
    assert "anthropic-beta" not in upstream.last_headers("claude-x")


def test_answers_keep_thinking_stop_sequences_and_cache_usage() -> None:
    data = {"id": "msg_1", "model": "c", "stop_reason": "stop_sequence", "stop_sequence": "END",
            "content": [{"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "text", "text": "Done"}],
            "usage": {"input_tokens": 4, "cache_read_input_tokens": 10,
                      "cache_creation_input_tokens": 6, "output_tokens": 3}}
    out = to_completion(data)
    choice = out["choices"][0]
    assert choice["message"]["reasoning_content"] == "Hmm."
    assert choice["message"]["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"}]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", "END")
    assert out["usage"]["prompt_tokens"] == 20
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 10,
                                                     "cache_creation_tokens": 6}


def test_stream_translator_emits_thinking_and_signature_deltas() -> None:
    translator = StreamTranslator("c", include_usage=True)
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {
            "input_tokens": 4, "cache_read_input_tokens": 10, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "redacted_thinking", "data": "opaque"}},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text",
                                                                      "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta",
                                                              "text": "Done"}},
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence",
                                            "stop_sequence": "END"},
         "usage": {"output_tokens": 3, "cache_creation_input_tokens": 6}},
        {"type": "message_stop"}]
    chunks = [c for e in events for c in translator.feed(e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[1:5] == [
        {"reasoning_content": "Hmm."},
        {"thinking_blocks": [{"type": "thinking", "signature": "sig"}]},
        {"thinking_blocks": [{"type": "redacted_thinking", "data": "opaque"}]},
        {"content": "Done"}]
    assert chunks[-2]["choices"][0]["stop_reason"] == "END"
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 10, "cache_creation_tokens": 6}}
