"""Agent-aware routing through the gateway and the official SDKs: aliases for agents'
fixed model names, passthrough for unknown names of a family, scenario rules, and session
affinity that keeps a conversation on the model whose prompt cache it has."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from budget_gateway_support import logged
from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

KEY = "sk-agent-0123456789"
# two mid models of close prices (A has a cheap cache), one very cheap one
MODELS: dict[str, Any] = {
    "model-a": {"provider": "stub-anthropic", "input_price": 1.0, "output_price": 4.0,
                "cache_read_price": 0.1, "cache_write_price": 1.25, "tier": "mid",
                "quality": 0.8},
    "model-b": {"provider": "stub-openai", "input_price": 0.8, "output_price": 4.0,
                "cache_read_price": 0.4, "tier": "mid", "quality": 0.8},
    "model-c": {"provider": "stub-openai", "input_price": 0.01, "output_price": 0.02,
                "tier": "cheap", "quality": 0.5},
}
COMMON = {"context_window": 200000, "capabilities": ["streaming", "tools"],
          "latency_ms": 500, "ttft_ms": 200}
RULES = [{"name": "web-search", "when": {"tools_any": ["web_search*"]},
          "then": {"model": "model-c"}},
         {"name": "thinking", "when": {"thinking": True}, "then": {"model": "model-a"}},
         {"name": "code-goes-to-b", "when": {"task_type": ["code"]},
          "then": {"model": "model-b"}},
         {"name": "cheap-when-tiny", "when": {"task_type": ["chat"]},
          "then": {"model": "model-c"}}]


@pytest.fixture()
def gateway(upstream: UpstreamStub, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = {
        "catalog": {"include_default": False,
                    "models": {name: {**COMMON, **spec} for name, spec in MODELS.items()}},
        "router": {"candidates": list(MODELS)},
        "rules": RULES,
        "aliases": [{"match": ["claude-opus-*"], "min_tier": "mid"},
                    {"match": "claude-haiku-*", "max_tier": "cheap", "prefer": "cheapest"}],
        "passthrough": [{"match": "gpt-*", "endpoint": "stub-openai", "price_as": "model-b"}],
        "providers": {"endpoints": {
            "stub-openai": {"kind": "openai", "base_url": upstream.base_url},
            "stub-anthropic": {"kind": "anthropic", "base_url": upstream.url}}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0},
                    "keys": [{"name": "agent", "key": KEY, "models": ["claude-opus-*",
                                                                     "claude-haiku-*",
                                                                     "gpt-*", "mistral-*",
                                                                     "auto"]}]},
        "budgets": {"store": "memory"},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    with running(create_app(load_config(path))) as url:
        yield url, tmp_path


def test_aliases_route_agents_fixed_names(gateway: tuple[str, Path],
                                          clients: ExitStack) -> None:
    url, _ = gateway
    client = clients.enter_context(
        anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0))
    raw = client.messages.with_raw_response.create(
        model="claude-opus-5-5", max_tokens=50,
        messages=[{"role": "user", "content": "Please analyse the trade-offs here"}])
    assert raw.headers["x-pointsman-model"] in ("model-a", "model-b")  # tier >= mid
    assert "alias 'claude-opus-*' -> auto" in raw.headers["x-pointsman-reason"]
    small = client.messages.with_raw_response.create(
        model="claude-haiku-4-5-20251001", max_tokens=50,
        messages=[{"role": "user", "content": "Write a title for this chat"}])
    assert small.headers["x-pointsman-model"] == "model-c"


def test_an_unknown_name_of_a_family_passes_through_at_an_assumed_price(
        gateway: tuple[str, Path], upstream: UpstreamStub, clients: ExitStack) -> None:
    url, _ = gateway
    client = clients.enter_context(
        openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-9-preview", messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-pointsman-model"] == "gpt-9-preview"
    assert "passed through" in raw.headers["x-pointsman-reason"]
    assert "assumed prices of model-b" in raw.headers["x-pointsman-reason"]
    assert upstream.requests("gpt-9-preview") == 1
    answer = raw.parse()
    assert answer.usage is not None
    expected = (answer.usage.prompt_tokens * 0.8 + answer.usage.completion_tokens * 4.0) / 1e6
    assert float(raw.headers["x-pointsman-cost-usd"]) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="mistral-huge",
                                       messages=[{"role": "user", "content": "hello"}])


def test_scenario_rules_match_what_agents_send(gateway: tuple[str, Path],
                                               clients: ExitStack) -> None:
    url, _ = gateway
    client = clients.enter_context(
        anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0))
    search: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=50, tools=[search],
        messages=[{"role": "user", "content": "Who won yesterday?"}])
    assert raw.headers["x-pointsman-model"] == "model-c"
    assert "rule 'web-search' matched" in raw.headers["x-pointsman-reason"]
    thought = client.messages.with_raw_response.create(
        model="auto", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Who won yesterday?"}])
    assert thought.headers["x-pointsman-model"] == "model-a"
    assert "rule 'thinking' matched" in thought.headers["x-pointsman-reason"]


LONG = ("Here is our service's design document, section by section. " * 120).strip()


def _turn(client: anthropic.Anthropic, history: list[Any], text: str,
          session: str, **extra: Any) -> tuple[str, str]:
    history.append({"role": "user", "content": text})
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=2000, messages=history,
        extra_headers={"X-Claude-Code-Session-Id": session}, **extra)
    message = raw.parse()
    history.append({"role": "assistant", "content": message.content})
    return raw.headers["x-pointsman-model"], raw.headers["x-pointsman-reason"]


def test_a_conversation_stays_on_the_model_whose_cache_it_has(
        gateway: tuple[str, Path], clients: ExitStack) -> None:
    url, tmp_path = gateway
    client = clients.enter_context(
        anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0))
    history: list[Any] = []
    first, _ = _turn(client, history, f"{LONG}\nThink it through.", "s-keep",
                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert first == "model-a"  # the thinking rule; later turns ask for code (model-b)
    models = [first]
    for i in range(4):
        model, reason = _turn(client, history, f"Now write the function number {i} in "
                                               "python code", "s-keep")
        models.append(model)
        if model == first:
            assert "kept on" in reason and "cached prefix" in reason
    assert len(set(models)) == 1, models  # the router alone would have moved it to model-b
    # a fresh session asking the same thing goes where the router sends it
    fresh, _ = _turn(client, [], "Now write the function in python code", "s-other")
    assert fresh == "model-b"
    deadline = time.monotonic() + 60  # the log is written off the request's path
    while len(rows := logged(tmp_path / "requests.db")) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r["session"] for r in rows].count("s-keep") == 5
    assert {r["door"] for r in rows} == {"messages"}


def test_a_conversation_moves_when_the_saving_beats_the_cache(
        gateway: tuple[str, Path], clients: ExitStack) -> None:
    url, _ = gateway
    client = clients.enter_context(
        anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0))
    history: list[Any] = []
    first, _ = _turn(client, history, f"{LONG}\nNow write the python code for it", "s-move")
    assert first == "model-b"
    model, reason = _turn(client, history, "hello thanks", "s-move")  # rule: model-c
    assert model == "model-c"  # 80x cheaper input: worth more than model-b's cache
    assert "moved from model-b" in reason


def test_responses_conversations_follow_previous_response_id(
        gateway: tuple[str, Path], clients: ExitStack) -> None:
    url, _ = gateway
    client = clients.enter_context(
        openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0))
    first = client.responses.with_raw_response.create(
        model="auto", input=f"{LONG}\nThink about it", store=True,
        reasoning={"effort": "high"})
    assert first.headers["x-pointsman-model"] == "model-a"  # the thinking rule
    second = client.responses.with_raw_response.create(
        model="auto", input="Now write the python code", store=False,
        previous_response_id=first.parse().id)
    assert second.headers["x-pointsman-model"] == "model-a"
    assert "kept on model-a" in second.headers["x-pointsman-reason"]
