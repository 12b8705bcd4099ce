"""Any door to any model: 3 doors (Chat Completions, Messages, Responses, each driven by its
official SDK) × 3 upstream wire formats the stub speaks (OpenAI Chat, Anthropic Messages,
OpenAI Responses) × stream / not × tools / not. Each case checks the answer in the caller's
format, the headers, the request-log row (door, model, cost) and that the ledger equals the
log."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from budget_gateway_support import ledger_totals, logged, logged_nanos
from gateway_harness import anthropic_message, running
from pointsman.budget.ledger import to_nanos
from pointsman.config import PointsmanConfig, load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

WIRES = {"gpt-4o-mini": "stub-openai", "claude-haiku-4-5": "stub-anthropic",
         "gpt-4.1": "stub-responses"}
KEY = "sk-matrix-0123456789"
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                      "required": ["city"]}}
PROMPT = "What is the weather in Paris today"


def matrix_config(tmp_path: Path, stub: UpstreamStub) -> PointsmanConfig:
    data = {
        "router": {"candidates": list(WIRES)},
        "rules": [],
        "providers": {
            "endpoints": {"stub-openai": {"kind": "openai", "base_url": stub.base_url},
                          "stub-anthropic": {"kind": "anthropic", "base_url": stub.url},
                          "stub-responses": {"kind": "openai_responses",
                                             "base_url": stub.base_url}},
            "timeouts": {"connect": 2, "first_token": 10, "total": 20},
            "deployments": {m: [{"endpoint": e}] for m, e in WIRES.items()}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0},
                    "keys": [{"name": "matrix", "key": KEY, "user": "mat"}]},
        "budgets": {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
                    "limits": [{"scope": "global", "limit_usd": 100}]},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@dataclass
class Seen:
    """What one call showed its caller."""

    text: str
    tool: str | None
    arguments: dict[str, Any] | None
    headers: Mapping[str, str]


def _chat(url: str, model: str, stream: bool, tools: bool) -> Seen:
    extra: Any = {"tools": [{"type": "function", "function": {
        "name": WEATHER["name"], "description": WEATHER["description"],
        "parameters": WEATHER["schema"]}}]} if tools else {}
    messages: Any = [{"role": "user", "content": PROMPT}]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client:
        if not stream:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, **extra)
            message = raw.parse().choices[0].message
            call = message.tool_calls[0] if message.tool_calls else None
            return Seen(message.content or "", call.function.name if call else None,
                        json.loads(call.function.arguments) if call else None,
                        raw.headers)
        raw_stream = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=True, **extra)
        text, name, args = "", None, ""
        for chunk in raw_stream.parse():
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or ():
                    name = name or (call.function.name if call.function else None)
                    args += (call.function.arguments or "") if call.function else ""
    return Seen(text, name, json.loads(args) if name else None, raw_stream.headers)


def _messages(url: str, model: str, stream: bool, tools: bool) -> Seen:
    extra: Any = {"tools": [{"name": WEATHER["name"], "description": WEATHER["description"],
                             "input_schema": WEATHER["schema"]}]} if tools else {}
    args: Any = {"model": model, "max_tokens": 256,
                 "messages": [{"role": "user", "content": PROMPT}], **extra}
    message, headers = anthropic_message(url, KEY, args, stream)
    text = "".join(b.text for b in message.content if b.type == "text")
    uses = [b for b in message.content if b.type == "tool_use"]
    return Seen(text, uses[0].name if uses else None,
                dict(uses[0].input) if uses else None, headers)


def _responses(url: str, model: str, stream: bool, tools: bool) -> Seen:
    extra: Any = {"tools": [{"type": "function", "name": WEATHER["name"],
                             "description": WEATHER["description"],
                             "parameters": WEATHER["schema"], "strict": False}]} if tools else {}
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client:
        if stream:
            with client.responses.stream(model=model, input=PROMPT, store=False,
                                         **extra) as events:
                response = events.get_final_response()
                headers = events._raw_stream.response.headers
        else:
            raw = client.responses.with_raw_response.create(model=model, input=PROMPT,
                                                            store=False, **extra)
            response, headers = raw.parse(), raw.headers
    calls = [item for item in response.output if item.type == "function_call"]
    return Seen(response.output_text, calls[0].name if calls else None,
                json.loads(calls[0].arguments) if calls else None, headers)


DOORS = {"chat": _chat, "messages": _messages, "responses": _responses}


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture(scope="module")
def gateway(stub: UpstreamStub, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, PointsmanConfig, Path]]:
    tmp_path = tmp_path_factory.mktemp("matrix")
    cfg = matrix_config(tmp_path, stub)
    with running(create_app(cfg)) as url:
        yield url, cfg, tmp_path


CASES = [(door, model, stream, tools) for door in DOORS for model in WIRES
         for stream in (False, True) for tools in (False, True)]
_done: list[tuple[str, str, bool, bool]] = []


@pytest.mark.parametrize(("door", "model", "stream", "tools"), CASES)
def test_any_door_to_any_model(gateway: tuple[str, PointsmanConfig, Path], stub: UpstreamStub,
                               door: str, model: str, stream: bool, tools: bool) -> None:
    url, _, _ = gateway
    stub.reset()
    stub.behave("*", tool_call=tools)
    seen = DOORS[door](url, model, stream, tools)
    assert seen.headers["x-pointsman-model"] == model
    assert seen.headers["x-pointsman-request-id"]
    assert float(seen.headers["x-pointsman-cost-usd"]) > 0
    if tools:
        assert seen.tool == "get_weather" and isinstance(seen.arguments, dict)
    else:
        assert seen.tool is None
        assert seen.text.startswith(f"stub answer from {model}: {PROMPT}"[:40])
    _done.append((door, model, stream, tools))


def test_every_case_logged_once_with_its_door_and_the_ledger_equals_the_log(
        gateway: tuple[str, PointsmanConfig, Path], stub: UpstreamStub) -> None:
    """Runs after the matrix (same module): one row per case, its door and model, a cost,
    and the ledger's spend = the log's costs to the nanodollar, nothing left reserved."""
    url, cfg, tmp_path = gateway
    with httpx.Client() as http:  # the log is written off the request's path: wait for it
        http.get(f"{url}/health")
    rows = _rows_when_flushed(tmp_path / "requests.db", len(_done))
    assert sorted((r["door"], r["model"], bool(r["stream"])) for r in rows) == sorted(
        (d, m, s) for d, m, s, _ in _done)
    assert all(r["outcome"] == "ok" and r["cost_usd"] > 0 and r["key"] == "matrix"
               for r in rows)
    for row in rows:
        assert json.loads(row["record"])["door"] == row["door"]
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows) == sum(to_nanos(r["cost_usd"]) for r in rows)
    assert total.held == 0


def _rows_when_flushed(path: Path, want: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 60
    rows = logged(path)
    while len(rows) < want and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = logged(path)
    return rows
