"""The OpenAI-compatible adapter against the local upstream stub, over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest

from pointsman.errors import (
    ProviderError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamConnectionError,
    UpstreamMisconfiguredError,
    UpstreamRejectedError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from pointsman.providers.base import ChatCall, Provider, Timeouts
from pointsman.providers.http import parse_retry_after, transport_error
from pointsman.providers.openai_compat import OpenAICompatProvider
from pointsman.testing import UpstreamStub
from provider_support import collect, run_with

T = TypeVar("T")
KEY = "sk-test-4f9a8b7c6d5e"
USER = {"role": "user", "content": "Name three rivers in Europe."}
TOOL = {"type": "function", "function": {"name": "search", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
FAST = Timeouts(connect=1.0, first_token=0.3, total=2.0)


def body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [USER], **extra}


def run(base_url: str, use: Callable[[Provider], Awaitable[T]], key: str | None = KEY) -> T:
    return run_with(lambda: OpenAICompatProvider("stub", base_url, api_key=key), use)


def text_of(chunks: list[Mapping[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_complete_passes_the_body_through_and_reads_usage(upstream: UpstreamStub) -> None:
    sent = body("m-1", tools=[TOOL], tool_choice="auto", temperature=0.2, seed=7,
                response_format={"type": "json_object"}, vendor_extension={"x": 1})
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(sent)))
    assert result.body["choices"][0]["message"]["content"] == (
        "stub answer from m-1: Name three rivers in Europe.")
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1 + 5, 9)
    assert upstream.last_request("m-1") == {**sent, "stream": False}
    assert upstream.last_headers("m-1")["authorization"] == f"Bearer {KEY}"


def test_complete_drops_stream_options_which_openai_refuses_without_stream(
        upstream: UpstreamStub) -> None:
    sent = body("m-1", stream_options={"include_usage": True})
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(sent)))
    assert result.body["object"] == "chat.completion"
    assert "stream_options" not in (upstream.last_request("m-1") or {})


def test_stream_text_ends_with_usage_when_asked(upstream: UpstreamStub) -> None:
    sent = body("m-2", stream_options={"include_usage": True})
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(sent)))
    assert text_of(chunks) == "stub answer from m-2: Name three rivers in Europe."
    assert chunks[-1]["usage"]["completion_tokens"] == 9
    plain = run(upstream.base_url, lambda p: collect(p, ChatCall(body("m-2", stream=True))))
    assert all("usage" not in c for c in plain)
    assert upstream.last_request("m-2") == body("m-2", stream=True)


def test_stream_tool_call_deltas_assemble(upstream: UpstreamStub) -> None:
    upstream.behave("m-3", tool_call=True)
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall(body("m-3", tools=[TOOL]))))
    deltas = [d for c in chunks for d in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert deltas[0]["function"]["name"] == "search"
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert json.loads(arguments) == {"query": USER["content"]}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_429_carries_retry_after_seconds_and_the_model(upstream: UpstreamStub) -> None:
    upstream.behave("m-4", statuses=[429], retry_after=3)
    with pytest.raises(RateLimitedError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body("m-4"))))
    assert caught.value.retry_after == 3.0
    assert caught.value.model == "m-4"
    assert "injected status 429" in caught.value.message


def test_429_with_an_http_date(upstream: UpstreamStub) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    upstream.behave("m-4", statuses=[429], retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(RateLimitedError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body("m-4", stream=True))))
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Thu, 01 Jan 2026 00:00:12 GMT"}, now) == 12.0
    assert parse_retry_after({"retry-after": "Wed, 31 Dec 2025 00:00:00 GMT"}, now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_a_server_error_with_its_status(upstream: UpstreamStub, status: int) -> None:
    upstream.behave("m-5", statuses=[status])
    with pytest.raises(UpstreamServerError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body("m-5"))))
    assert caught.value.status == status
    assert caught.value.retryable


def test_4xx_is_rejected_with_the_upstream_message(upstream: UpstreamStub) -> None:
    with pytest.raises(UpstreamRejectedError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall({"model": "m-6", "messages": []})))
    assert caught.value.status == 400
    assert not caught.value.retryable
    assert "'messages' must be a non-empty array" in caught.value.message


def test_a_wrong_key_is_rejected_and_never_shown(upstream: UpstreamStub,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    upstream.require_key("sk-the-right-one")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UpstreamMisconfiguredError) as caught:
        run(upstream.base_url, lambda p: p.complete(ChatCall(body("m-7"))))
    assert caught.value.status == 401 and caught.value.retryable
    assert "upstream 127.0.0.1 refused pointsman's API key (401)" in caught.value.message
    assert KEY not in str(caught.value)
    assert KEY not in caught.value.message
    assert KEY not in caplog.text
    assert KEY not in repr(OpenAICompatProvider("x", upstream.base_url, api_key=KEY))


def test_hang_is_a_first_token_timeout_for_streams(upstream: UpstreamStub) -> None:
    upstream.behave("m-8", hang=True)
    with pytest.raises(UpstreamTimeoutError, match=r"first-token timeout of 0\.3s") as caught:
        run(upstream.base_url, lambda p: collect(p, ChatCall(body("m-8"), FAST)))
    assert caught.value.model == "m-8"


def test_hang_is_a_total_timeout_without_streaming(upstream: UpstreamStub) -> None:
    upstream.behave("m-8", hang=True)
    with pytest.raises(UpstreamTimeoutError, match=r"total timeout of 0\.4s"):
        run(upstream.base_url, lambda p: p.complete(ChatCall(body("m-8"), Timeouts(1, 0.1, 0.4))))


def test_total_timeout_covers_the_whole_stream(upstream: UpstreamStub) -> None:
    upstream.behave("m-9", token_delay_ms=100, tokens=50)
    got: list[Mapping[str, Any]] = []
    with pytest.raises(UpstreamTimeoutError, match=r"total timeout of 0\.5s"):
        run(upstream.base_url, lambda p: collect(p, ChatCall(body("m-9"),
                                                             Timeouts(1, 0.3, 0.5)), got))
    assert 1 <= len(text_of(got).split()) < 50


def test_connection_refused_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamConnectionError, match=r"cannot connect to 127\.0\.0\.1"):
        run(f"http://127.0.0.1:{port}/v1", lambda p: p.complete(ChatCall(body("m"))))


def test_transport_errors_map_to_our_kinds() -> None:
    cases: list[tuple[httpx.HTTPError, type[ProviderError]]] = [
        (httpx.ConnectTimeout("slow"), UpstreamTimeoutError),
        (httpx.PoolTimeout("busy"), UpstreamTimeoutError),
        (httpx.ConnectError("refused"), UpstreamConnectionError),
        (httpx.RemoteProtocolError("reset"), StreamBrokenError),
    ]
    for exc, kind in cases:
        mapped = transport_error(exc, "m", "host", streaming=True)
        assert type(mapped) is kind
        assert mapped.model == "m"
    assert "connect timeout" in transport_error(httpx.ConnectTimeout("x"), "m", "host",
                                                streaming=False).message


@pytest.mark.parametrize("cut,mode,tokens,match", [
    (0, "reset", 0, "broke"), (2, "reset", 2, "broke"),
    (3, "end", 3, r"ended without data: \[DONE\]"), (1, "garbage", 1, "malformed"),
    (2, "error", 2, "upstream error mid-stream: .*overloaded mid-stream")])
def test_cut_streams_are_broken(upstream: UpstreamStub, cut: int, mode: str, tokens: int,
                                match: str) -> None:
    upstream.behave("m-10", cut_after=cut, cut_mode=mode)
    got: list[Mapping[str, Any]] = []
    with pytest.raises(StreamBrokenError, match=match) as caught:
        run(upstream.base_url, lambda p: collect(p, ChatCall(body("m-10")), got))
    assert len(text_of(got).split()) == tokens
    assert caught.value.model == "m-10"


def test_door_facts_and_extensions_never_reach_an_openai_endpoint(
        upstream: UpstreamStub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pointsman.providers")
    cached = {"type": "ephemeral"}
    sent = body("m-x", thinking={"type": "adaptive"}, top_k=3,
                tools=[{**TOOL, "cache_control": cached}, {"type": "web_search_20250305",
                                                           "name": "web_search"}],
                _pointsman={"door": "messages", "ext": True})
    sent["messages"] = [{"role": "system", "content": [{"type": "text", "text": "Be brief.",
                                                        "cache_control": cached}]},
                        USER, {"role": "assistant", "content": "Rhine.", "thinking_blocks": [
                            {"type": "thinking", "thinking": "x", "signature": "s"}]}, USER]
    result = run(upstream.base_url, lambda p: p.complete(ChatCall(sent)))
    assert result.body["choices"][0]["finish_reason"] == "stop"
    got = upstream.last_request("m-x") or {}
    assert not {"_pointsman", "thinking", "top_k"} & set(got)
    assert got["tools"] == [TOOL]
    assert got["messages"][0]["content"] == [{"type": "text", "text": "Be brief."}]
    assert got["messages"][2] == {"role": "assistant", "content": "Rhine."}
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == ["stub: dropped what an OpenAI-compatible endpoint does not take: "
                       "content cache_control, message thinking_blocks, server tools, thinking, "
                       "tool cache_control, top_k"]
    assert sent["tools"][0]["cache_control"] == cached  # the caller's body is left alone


def test_a_plain_door_body_loses_only_its_private_key(upstream: UpstreamStub) -> None:
    sent = body("m-y", top_k=3, _pointsman={"door": "messages"})
    chunks = run(upstream.base_url, lambda p: collect(p, ChatCall({**sent, "stream": True})))
    assert text_of(chunks).startswith("stub answer from m-y")
    got = upstream.last_request("m-y") or {}
    assert "_pointsman" not in got and got["top_k"] == 3
