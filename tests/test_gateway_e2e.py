"""End to end: the official ``openai`` SDK → the gateway (uvicorn, real adapters) → the
upstream stub speaking the OpenAI and Anthropic wire formats on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

MODELS = ["gpt-4o-mini", "gpt-4.1", "claude-haiku-4-5"]
WEATHER_TOOL: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def write_config(tmp_path: Path, stub: UpstreamStub, **gateway: Any) -> Path:
    data = {
        "router": {"candidates": MODELS, "strong_model": "gpt-4.1",
                   "weak_model": "gpt-4o-mini",
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1"], "claude-haiku-4-5": ["gpt-4.1"]}},
        "providers": {
            "endpoints": {"stub-openai": {"kind": "openai", "base_url": stub.base_url},
                          "stub-anthropic": {"kind": "anthropic", "base_url": stub.url}},
            "timeouts": {"connect": 1, "first_token": 0.5, "total": 2},
            "deployments": {"gpt-4o-mini": [{"endpoint": "stub-openai"}],
                            "gpt-4.1": [{"endpoint": "stub-openai"}],
                            "claude-haiku-4-5": [{"endpoint": "stub-anthropic"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0},
                    "health": {"consecutive_failures": 5}, **gateway},
        "budgets": {"store": "memory"},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture()
def gateway(stub: UpstreamStub, tmp_path: Path) -> Iterator[tuple[openai.OpenAI, Path]]:
    stub.reset()
    with running(create_app(load_config(write_config(tmp_path, stub)))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        yield client, tmp_path / "requests.db"


def ask(model: str, text: str = "What is the capital of France?") -> Any:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def test_auto_and_explicit_through_real_adapters(gateway: tuple[openai.OpenAI, Path],
                                                 stub: UpstreamStub) -> None:
    client, _ = gateway
    raw = client.chat.completions.with_raw_response.create(**ask("auto"))
    answer = raw.parse()
    assert raw.headers["x-pointsman-model"] == answer.model == "gpt-4o-mini"
    assert answer.choices[0].message.content == (
        "stub answer from gpt-4o-mini: What is the capital of France?")
    assert answer.usage is not None and answer.usage.completion_tokens == 10
    spec_cost = (answer.usage.prompt_tokens * 0.15 + 10 * 0.60) / 1e6
    assert float(raw.headers["x-pointsman-cost-usd"]) == pytest.approx(spec_cost)
    haiku = client.chat.completions.create(**ask("claude-haiku-4-5"))
    assert haiku.model == "claude-haiku-4-5"
    assert haiku.choices[0].message.content.startswith("stub answer from claude-haiku-4-5")
    assert stub.requests("claude-haiku-4-5") == 1


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5"])
def test_tools_round_trip(gateway: tuple[openai.OpenAI, Path], stub: UpstreamStub,
                          model: str) -> None:
    client, _ = gateway
    stub.behave(model, tool_call=True)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages,
                                           tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.model == model and first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
    second = client.chat.completions.create(model=model, messages=messages,
                                            tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


def test_streaming_include_usage_openai_and_anthropic(gateway: tuple[openai.OpenAI, Path]
                                                      ) -> None:
    client, _ = gateway
    for model in ("gpt-4o-mini", "claude-haiku-4-5"):
        chunks = list(client.chat.completions.create(
            **ask(model, "hello"), stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == f"stub answer from {model}: hello"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
        assert {c.model for c in chunks} == {model}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_fallback_on_upstream_errors(gateway: tuple[openai.OpenAI, Path], stub: UpstreamStub,
                                     status: int) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", statuses=[status], retry_after="30")
    raw = client.chat.completions.with_raw_response.create(**ask("gpt-4o-mini"))
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1"
    assert raw.parse().model == "gpt-4.1"


def test_retry_after_is_honoured(gateway: tuple[openai.OpenAI, Path],
                                 stub: UpstreamStub) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", statuses=[429], retry_after="1")
    assert client.chat.completions.create(**ask("gpt-4o-mini")).model == "gpt-4.1"
    raw = client.chat.completions.with_raw_response.create(**ask("auto"))
    assert raw.headers["x-pointsman-model"] != "gpt-4o-mini"  # blocked for 1 s
    assert stub.requests("gpt-4o-mini") == 1
    time.sleep(1.05)
    assert client.chat.completions.create(**ask("gpt-4o-mini")).model == "gpt-4o-mini"


def test_hang_hits_the_first_token_timeout_and_falls_back(
        gateway: tuple[openai.OpenAI, Path], stub: UpstreamStub) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", hang=True)
    start = time.monotonic()
    chunks = list(client.chat.completions.create(**ask("gpt-4o-mini"), stream=True))
    assert {c.model for c in chunks} == {"gpt-4.1"}
    assert time.monotonic() - start < 1.5  # first_token is 0.5 s


def test_stream_cut_before_and_after_the_first_token(gateway: tuple[openai.OpenAI, Path],
                                                     stub: UpstreamStub) -> None:
    client, db = gateway
    stub.behave("gpt-4o-mini", cut_after=0)
    chunks = list(client.chat.completions.create(**ask("gpt-4o-mini"), stream=True))
    assert {c.model for c in chunks} == {"gpt-4.1"}
    stub.behave("claude-haiku-4-5", cut_after=2)
    received: list[str] = []
    with pytest.raises(openai.APIError, match=r"upstream_stream_broken|broke"):
        for chunk in client.chat.completions.create(**ask("claude-haiku-4-5"), stream=True):
            received += [c.delta.content or "" for c in chunk.choices]
    assert "".join(received) == "stub answer"
    deadline = time.monotonic() + 5
    outcomes: list[str] = []
    while "stream_broken" not in outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(db) as conn:
            outcomes = [r[0] for r in conn.execute("SELECT outcome FROM requests")]
    assert "stream_broken" in outcomes


def test_all_failing_lists_each_attempt(gateway: tuple[openai.OpenAI, Path],
                                        stub: UpstreamStub) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", statuses=[500])
    stub.behave("gpt-4.1", statuses=[503], retry_after=None)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**ask("gpt-4o-mini"))
    error: Any = info.value.body
    assert info.value.status_code == 502 and error["code"] == "all_models_failed"
    assert [(a["model"], a["code"]) for a in error["attempts"]] == [
        ("gpt-4o-mini", "upstream_server_error"), ("gpt-4.1", "upstream_server_error")]


@pytest.mark.parametrize(("status", "error"), [(400, openai.BadRequestError),
                                               (422, openai.UnprocessableEntityError)])
def test_upstream_4xx_is_returned_as_is(gateway: tuple[openai.OpenAI, Path],
                                        stub: UpstreamStub, status: int,
                                        error: type[openai.APIStatusError]) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", statuses=[status])
    with pytest.raises(error) as info:
        client.chat.completions.create(**ask("gpt-4o-mini"))
    assert info.value.status_code == status
    assert info.value.body["code"] == "upstream_rejected"  # type: ignore[index]
    assert stub.requests("gpt-4.1") == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_upstream_refusing_pointsman_falls_back(gateway: tuple[openai.OpenAI, Path],
                                                stub: UpstreamStub, status: int) -> None:
    client, _ = gateway
    stub.behave("gpt-4o-mini", statuses=[status])
    raw = client.chat.completions.with_raw_response.create(**ask("gpt-4o-mini"))
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1"
    assert raw.parse().model == "gpt-4.1"
    assert stub.requests("gpt-4o-mini") == 1  # not retried: the same key would fail again


def test_upstream_auth_failure_everywhere_is_a_502_naming_it(
        gateway: tuple[openai.OpenAI, Path], stub: UpstreamStub) -> None:
    client, _ = gateway
    stub.behave("*", statuses=[401, 401, 401])
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**ask("gpt-4o-mini"))
    error: Any = info.value.body
    assert info.value.status_code == 502 and error["code"] == "all_models_failed"
    assert [a["code"] for a in error["attempts"]] == ["upstream_misconfigured"] * 2
    assert "upstream 127.0.0.1 refused pointsman's API key (401)" in error["message"]


def test_a_client_that_leaves_mid_stream_stops_the_upstream_and_is_logged(
        gateway: tuple[openai.OpenAI, Path], stub: UpstreamStub) -> None:
    """The client closes after two chunks of a 15-token stream paced at 100 ms a token: the
    gateway stops reading the upstream (the request ends in well under the stream's 1.5 s)
    and logs what was streamed so far."""
    client, db = gateway
    stub.behave("gpt-4o-mini", token_delay_ms=100, tokens=15)
    started = time.monotonic()
    stream = client.chat.completions.create(**ask("gpt-4o-mini"), stream=True)
    for _, _chunk in zip(range(2), stream, strict=False):
        pass
    stream.close()
    rows: list[tuple[int, float]] = []
    while not rows and time.monotonic() - started < 5:
        time.sleep(0.05)
        with sqlite3.connect(db) as conn:
            rows = list(conn.execute("SELECT completion_tokens, total_ms FROM requests"))
    assert rows, "the left stream was never logged"
    [(tokens, total_ms)] = rows
    assert tokens < 15 and total_ms < 1000
    assert time.monotonic() - started < 1.4  # logged before the upstream would have ended
