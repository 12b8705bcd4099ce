"""The OpenAI Responses adapter: translation both ways, checked on what the stub received
and on what came back, over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import pytest

from pointsman.errors import (
    InputError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamMisconfiguredError,
    UpstreamRejectedError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from pointsman.providers.base import ChatCall, Provider, Timeouts
from pointsman.providers.config import EndpointConfig, make_provider
from pointsman.providers.openai_responses import OpenAIResponsesProvider
from pointsman.providers.responses_wire import StreamTranslator, to_completion, to_responses
from pointsman.testing import UpstreamStub
from provider_support import collect, run_with

T = TypeVar("T")
KEY = "sk-resp-test-9f8e7d6c"
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
    {"role": "user", "content": [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg",
                                            "detail": "low"}}]},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
]


def run(base_url: str, use: Callable[[Provider], Awaitable[T]], key: str | None = KEY,
        summary: str | None = None) -> T:
    return run_with(lambda: OpenAIResponsesProvider("responses", base_url, api_key=key,
                                                    reasoning_summary=summary), use)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def text_of(chunks: Sequence[Mapping[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"])


# -- translation, pure ------------------------------------------------------------------

def test_request_translation_of_messages_tools_and_options() -> None:
    body = {"model": "gpt-x", "messages": CONVERSATION, "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9,
            "parallel_tool_calls": False, "user": "u-1", "prompt_cache_key": "k1",
            "reasoning_effort": "low", "stop": "END", "n": 1, "seed": 3, "top_k": 5,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": {"type": "object"}, "strict": True}},
            "_pointsman": {"door": "chat", "ext": True}, "thinking": {"type": "adaptive"}}
    out = to_responses(body)
    assert out["instructions"] == "You are terse.\n\nUse metric units."
    assert out["input"] == [
        {"role": "user", "content": [
            {"type": "input_text", "text": "Weather here?"},
            {"type": "input_image", "image_url": "https://example.com/a.jpg", "detail": "low"}]},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": "{\"city\": \"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C sunny"}]
    assert out["tools"] == [{"type": "function", "name": "get_weather",
                             "description": "Weather for a city", "strict": False,
                             "parameters": WEATHER["function"]["parameters"]}]
    assert out["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert out["text"] == {"format": {"type": "json_schema", "name": "answer",
                                      "schema": {"type": "object"}, "strict": True}}
    assert out["reasoning"] == {"effort": "low"}
    assert (out["max_output_tokens"], out["temperature"], out["top_p"]) == (50, 0.2, 0.9)
    assert (out["parallel_tool_calls"], out["user"], out["prompt_cache_key"]) == (
        False, "u-1", "k1")
    assert out["store"] is False
    for dropped in ("stop", "n", "seed", "top_k", "_pointsman", "thinking", "messages",
                    "stream", "max_completion_tokens"):
        assert dropped not in out


def test_max_tokens_summary_logprobs_and_json_object() -> None:
    body = {"model": "m", "messages": [user("hi")], "max_tokens": 7, "logprobs": True,
            "top_logprobs": 2, "reasoning_effort": "high",
            "response_format": {"type": "json_object"}, "tool_choice": "required"}
    out = to_responses(body, reasoning_summary="auto")
    assert out["input"] == [{"role": "user", "content": "hi"}]
    assert out["max_output_tokens"] == 7
    assert out["include"] == ["message.output_text.logprobs"]
    assert out["top_logprobs"] == 2
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["text"] == {"format": {"type": "json_object"}}
    assert out["tool_choice"] == "required"
    assert "reasoning" not in to_responses({"model": "m", "messages": [user("hi")]}, "auto")


@pytest.mark.parametrize("messages,param", [
    ([], "messages"),
    ([{"role": "user", "content": [{"type": "input_audio"}]}], "messages[0].content[0].type"),
    ([{"role": "user", "content": [{"type": "text", "text": 3}]}],
     "messages[0].content[0].text"),
    ([user("x"), {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}]}],
     "messages[1].tool_calls[0].function.arguments"),
    ([{"role": "function", "content": "x"}], "messages[0].role"),
])
def test_bad_input_names_the_field(messages: list[Any], param: str) -> None:
    with pytest.raises(InputError) as caught:
        to_responses({"model": "m", "messages": messages})
    assert caught.value.param == param


@pytest.mark.parametrize("status,details,finish", [
    ("completed", None, "stop"), ("incomplete", {"reason": "max_output_tokens"}, "length"),
    ("incomplete", {"reason": "content_filter"}, "content_filter")])
def test_response_translation(status: str, details: Any, finish: str) -> None:
    data = {"id": "resp_1", "object": "response", "created_at": 5, "model": "gpt-x",
            "status": status, "incomplete_details": details, "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [
                    {"type": "summary_text", "text": "First."},
                    {"type": "summary_text", "text": "Second."}]},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": status,
                 "content": [{"type": "output_text", "text": "Hello ", "annotations": []},
                             {"type": "output_text", "text": "world", "annotations": []}]}],
            "usage": {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29,
                      "input_tokens_details": {"cached_tokens": 8},
                      "output_tokens_details": {"reasoning_tokens": 4}}}
    out = to_completion(data)
    choice = out["choices"][0]
    assert choice["finish_reason"] == finish
    assert choice["message"] == {"role": "assistant", "content": "Hello world",
                                 "reasoning_content": "First.\n\nSecond."}
    assert (out["id"], out["created"], out["object"]) == ("resp_1", 5, "chat.completion")
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 8
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}
    assert (out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]) == (20, 9)


def test_a_failed_response_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamServerError, match="server melted"):
        to_completion({"status": "failed", "error": {"code": "server_error",
                                                     "message": "server melted"}}, "m")


def test_stream_translator_refuses_malformed_and_failed_events() -> None:
    translator = StreamTranslator("m", include_usage=True)
    with pytest.raises(StreamBrokenError, match="malformed"):
        translator.feed({"type": "response.output_text.delta"})
    with pytest.raises(StreamBrokenError, match="quota gone"):
        translator.feed({"type": "response.failed", "response": {
            "status": "failed", "error": {"code": "server_error", "message": "quota gone"}}})


def test_stream_translator_reasoning_summary_and_incomplete_end() -> None:
    translator = StreamTranslator("m", include_usage=False)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_9", "model": "gpt-y",
                                                  "created_at": 3}},
        {"type": "response.reasoning_summary_text.delta", "summary_index": 0, "delta": "Hm."},
        {"type": "response.reasoning_summary_part.added", "summary_index": 1},
        {"type": "response.reasoning_summary_text.delta", "summary_index": 1, "delta": "Ok."},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {"type": "response.incomplete", "response": {
            "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}}]
    chunks = [c for e in events for c in translator.feed(e)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {(c["id"], c["model"], c["created"]) for c in chunks} == {("resp_9", "gpt-y", 3)}
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                        for c in chunks)
    assert reasoning == "Hm.\n\nOk."
    assert text_of(chunks) == "Hi"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert translator.done


# -- against the stub ---------------------------------------------------------------------

def test_complete_sends_a_responses_body_and_translates_the_answer(
        upstream: UpstreamStub) -> None:
    body = {"model": "gpt-r", "messages": [{"role": "system", "content": "Be brief."},
                                            user("Hello there")]}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert upstream.last_request("gpt-r") == {
        "model": "gpt-r", "instructions": "Be brief.", "store": False,
        "input": [{"role": "user", "content": "Hello there"}]}
    assert upstream.last_headers("gpt-r")["authorization"] == f"Bearer {KEY}"
    choice = result.body["choices"][0]
    assert choice["message"]["content"] == "stub answer from gpt-r: Hello there"
    assert choice["finish_reason"] == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2 + 1 + 2, 6)


def test_usage_with_cached_and_reasoning_tokens(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-u", cached_tokens=40, reasoning_tokens=12, cache_creation_tokens=3)
    body = {"model": "gpt-u", "messages": [user("Hello there")], "reasoning_effort": "low"}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)), summary="auto")
    usage = result.body["usage"]
    assert usage["prompt_tokens"] == 3 + 40 + 3
    assert usage["completion_tokens"] == 6 + 12
    assert usage["prompt_tokens_details"] == {"cached_tokens": 40, "cache_creation_tokens": 3}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 12}
    assert result.body["choices"][0]["message"]["reasoning_content"] == \
        "Thinking about: Hello there"
    assert (upstream.last_request("gpt-u") or {})["reasoning"] == {"effort": "low",
                                                                  "summary": "auto"}
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(stream)), summary="auto")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == usage
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                        for c in chunks if c["choices"])
    assert reasoning == "Thinking about: Hello there"


def test_max_output_tokens_is_finish_reason_length(upstream: UpstreamStub) -> None:
    body = {"model": "gpt-l", "messages": [user("Capital of France?")], "max_tokens": 3}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert result.body["choices"][0]["finish_reason"] == "length"
    assert result.body["choices"][0]["message"]["content"] == "stub answer from"
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall({**body, "stream": True})))
    assert text_of(chunks) == "stub answer from"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_tool_call_round_trip(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-t", tool_call=True)
    body = {"model": "gpt-t", "messages": [user("Weather in Paris?")], "tools": [WEATHER],
            "tool_choice": "auto"}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    sent = upstream.last_request("gpt-t") or {}
    assert sent["tools"][0]["parameters"] == WEATHER["function"]["parameters"]
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_stub_")
    assert json.loads(call["function"]["arguments"]) == {"city": "Weather in Paris?"}
    follow = {**body, "messages": [*body["messages"], choice["message"],
                                   {"role": "tool", "tool_call_id": call["id"],
                                    "content": "18C"}]}
    again = run(upstream.base_url, lambda p: p.complete(ChatCall(follow)))
    sent = upstream.last_request("gpt-t") or {}
    assert sent["input"][-2:] == [
        {"type": "function_call", "call_id": call["id"], "name": "get_weather",
         "arguments": call["function"]["arguments"]},
        {"type": "function_call_output", "call_id": call["id"], "output": "18C"}]
    assert again.body["choices"][0]["finish_reason"] == "stop"


def test_stream_text_with_final_usage_chunk(upstream: UpstreamStub) -> None:
    body = {"model": "gpt-s", "messages": [user("Hello there")], "stream": True,
            "stream_options": {"include_usage": True}}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(body)))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "stub answer from gpt-s: Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["prompt_tokens"] == 3
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    sent = upstream.last_request("gpt-s") or {}
    assert sent["stream"] is True and "stream_options" not in sent


def test_stream_tool_call_deltas_like_openai(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-t", tool_call=True)
    body = {"model": "gpt-t", "messages": [user("Weather in Rome?")], "tools": [WEATHER]}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall({**body, "stream": True})))
    deltas = [d for c in chunks if c["choices"]
              for d in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert deltas[0]["id"].startswith("call_stub_")
    assert deltas[0]["function"]["name"] == "get_weather"
    assert {d["index"] for d in deltas} == {0}
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert json.loads(arguments) == {"city": "Weather in Rome?"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in chunks[-1]


def test_logprobs_come_back_as_chat_logprobs(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-lp", text="a b c", logprob=-0.5)
    body = {"model": "gpt-lp", "messages": [user("hi")], "logprobs": True}
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    content = result.body["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == "a b c"
    assert {t["logprob"] for t in content} == {-0.5}
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall({**body, "stream": True})))
    tokens = [t for c in chunks if c["choices"] and c["choices"][0].get("logprobs")
              for t in c["choices"][0]["logprobs"]["content"]]
    assert "".join(t["token"] for t in tokens) == "a b c"


def test_429_and_5xx_statuses(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-e", statuses=[429, 503, 400], retry_after=4)
    body = {"model": "gpt-e", "messages": [user("hi")]}
    with pytest.raises(RateLimitedError) as limited:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert limited.value.retry_after == 4.0
    with pytest.raises(UpstreamServerError) as server:
        run(upstream.base_url, lambda p: collect(p, ChatCall({**body, "stream": True})))
    assert server.value.status == 503
    with pytest.raises(UpstreamRejectedError) as rejected:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body)))
    assert rejected.value.status == 400


def test_bad_key_rejected_without_leaking_it(upstream: UpstreamStub,
                                             caplog: pytest.LogCaptureFixture) -> None:
    upstream.require_key("sk-another")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UpstreamMisconfiguredError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall({"model": "gpt-k",
                                                              "messages": [user("hi")]})))
    assert caught.value.status == 401
    assert KEY not in str(caught.value) and KEY not in caplog.text


def test_api_key_header_for_azure(upstream: UpstreamStub) -> None:
    async def use(provider: Provider) -> Any:
        return await provider.complete(ChatCall({"model": "gpt-az", "messages": [user("hi")]}))
    run_with(lambda: OpenAIResponsesProvider("azure", upstream.base_url, api_key=KEY,
                                             api_key_header="api-key"), use)
    headers = upstream.last_headers("gpt-az")
    assert headers["api-key"] == KEY and "authorization" not in headers


def test_hang_times_out_at_the_first_token(upstream: UpstreamStub) -> None:
    upstream.behave("gpt-h", hang=True)
    body = {"model": "gpt-h", "messages": [user("hi")], "stream": True}
    with pytest.raises(UpstreamTimeoutError, match="first-token"):
        run(upstream.base_url, lambda p: collect(p, ChatCall(body, Timeouts(1, 0.3, 5))))


@pytest.mark.parametrize("cut,mode,match", [(0, "reset", "broke"), (2, "reset", "broke"),
                                            (2, "end", "without response.completed"),
                                            (1, "garbage", "malformed"),
                                            (1, "error", "overloaded mid-stream")])
def test_cut_streams_are_broken(upstream: UpstreamStub, cut: int, mode: str,
                                match: str) -> None:
    upstream.behave("gpt-c", cut_after=cut, cut_mode=mode)
    got: list[Mapping[str, Any]] = []
    body = {"model": "gpt-c", "messages": [user("Hello there friend")], "stream": True}
    with pytest.raises(StreamBrokenError, match=match):
        run(upstream.base_url, lambda p: collect(p, ChatCall(body), got))
    tokens = [c for c in got if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(tokens) == cut


def test_the_openai_responses_endpoint_kind_builds_this_adapter(upstream: UpstreamStub) -> None:
    endpoint = EndpointConfig(kind="openai_responses", base_url=upstream.base_url,
                              reasoning_summary="concise", headers={"x-team": "t1"})
    provider = make_provider("resp", endpoint, None, KEY)
    assert isinstance(provider, OpenAIResponsesProvider)
    assert provider.reasoning_summary == "concise"
    body = {"model": "gpt-cfg", "messages": [user("hi")], "reasoning_effort": "minimal"}
    result = run_with(lambda: provider, lambda p: p.complete(ChatCall(body)))
    assert result.body["choices"][0]["message"]["content"] == "stub answer from gpt-cfg: hi"
    assert (upstream.last_request("gpt-cfg") or {})["reasoning"] == {"effort": "minimal",
                                                                    "summary": "concise"}
    assert upstream.last_headers("gpt-cfg")["x-team"] == "t1"
