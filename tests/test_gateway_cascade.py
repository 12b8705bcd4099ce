"""The quality-check cascade served by the gateway: the official ``openai`` SDK → the
gateway (uvicorn) → the upstream stub, whose answers state a confidence per model."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.errors import ConfigError
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

MODELS = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1"]
QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]


def write_config(tmp_path: Path, stub: UpstreamStub, cascade: dict[str, Any] | None,
                 **extra: Any) -> Path:
    data: dict[str, Any] = {
        "router": {"candidates": MODELS, "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini",
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1-mini", "gpt-4.1"]}},
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "timeouts": {"connect": 1, "first_token": 1, "total": 2},
            "deployments": {m: [{"endpoint": "stub"}] for m in MODELS}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0}},
        "budgets": {"store": "memory"},
        **extra,
    }
    if cascade is not None:
        data["cascade"] = cascade
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def served(tmp_path: Path, stub: UpstreamStub, cascade: dict[str, Any] | None = None,
           **extra: Any) -> Iterator[openai.OpenAI]:
    cfg = load_config(write_config(tmp_path, stub, cascade, **extra))
    with running(create_app(cfg)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def records(tmp_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(tmp_path / "requests.db") as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM requests")]


ON = {"enabled": True, "judge": "self_reported", "threshold": 0.7, "max_steps": 3}


def test_low_confidence_escalates_and_is_logged(upstream: UpstreamStub, tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.\nConfidence: 0.3")
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.95")
    with served(tmp_path, upstream, ON) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
        answer = raw.parse()
        metrics = httpx.get(str(client.base_url).replace("/v1/", "/metrics")).text
    assert 'pointsman_cascade_steps_total{model="gpt-4o-mini",result="below"} 1.0' in metrics
    assert 'pointsman_cascade_steps_total{model="gpt-4.1-mini",result="passed"} 1.0' in metrics
    assert answer.model == raw.headers["x-pointsman-model"] == "gpt-4.1-mini"
    assert answer.choices[0].message.content == "Paris."  # the confidence line is removed
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1-mini"
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30>gpt-4.1-mini:0.95"
    assert upstream.requests("gpt-4.1") == 0
    asked = upstream.last_request("gpt-4o-mini")
    assert asked is not None and "Confidence" in asked["messages"][0]["content"]
    (record,) = records(tmp_path)
    assert record["models_tried"] == ["gpt-4o-mini", "gpt-4.1-mini"]
    assert "cascade@0.7: gpt-4o-mini:0.30>gpt-4.1-mini:0.95" in record["decision"]["reason"]
    assert record["cost_usd"] == pytest.approx(float(raw.headers["x-pointsman-cost-usd"]))
    assert record["cost_usd"] > 0


def test_high_confidence_stops_and_threshold_in_the_name(upstream: UpstreamStub,
                                                         tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Paris.\nConfidence: 0.9")
    upstream.behave("gpt-4.1-mini", text="Paris!\nConfidence: 0.99")
    with served(tmp_path, upstream, ON) as client:
        ids = [m.id for m in client.models.list().data]
        assert {"cascade", "cascade-0.7"} <= set(ids)
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
        assert raw.headers["x-pointsman-model"] == "gpt-4o-mini"
        assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.90"
        assert upstream.requests("gpt-4.1-mini") == 0
        strict = client.chat.completions.with_raw_response.create(model="cascade-0.95",
                                                                  messages=QUESTION)
        assert strict.headers["x-pointsman-model"] == "gpt-4.1-mini"
        with pytest.raises(openai.BadRequestError, match="cascade-<threshold>"):
            client.chat.completions.create(model="cascade-2", messages=QUESTION)


def test_streaming_sends_only_the_final_answer(upstream: UpstreamStub, tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.\nConfidence: 0.2")
    upstream.behave("gpt-4.1-mini", text="Paris is the capital.\nConfidence: 0.9")
    with served(tmp_path, upstream, ON) as client, \
            client.chat.completions.with_streaming_response.create(
                model="cascade", messages=QUESTION, stream=True,
                stream_options={"include_usage": True}) as response:
        assert response.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.20>gpt-4.1-mini:0.90"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital."
    assert {c.model for c in chunks} == {"gpt-4.1-mini"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    for model in ("gpt-4o-mini", "gpt-4.1-mini"):  # each step was a plain completion
        asked = upstream.last_request(model)
        assert asked is not None and not asked.get("stream")
    (record,) = records(tmp_path)
    assert record["stream"] is True and record["model"] == "gpt-4.1-mini"


def test_max_steps_bounds_the_escalation(upstream: UpstreamStub, tmp_path: Path) -> None:
    for model in MODELS:
        upstream.behave(model, text=f"Unsure ({model}).\nConfidence: 0.1")
    with served(tmp_path, upstream, {**ON, "max_steps": 2}) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.10>gpt-4.1-mini:0.10"
    assert raw.parse().choices[0].message.content == "Unsure (gpt-4.1-mini)."
    assert upstream.requests("gpt-4.1") == 0


def test_budget_that_cannot_cover_the_escalation_keeps_the_cheap_answer(
        upstream: UpstreamStub, tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.\nConfidence: 0.3")
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.95")
    limit = 2e-4  # covers a gpt-4o-mini call (~$1e-4 reserved), not a gpt-4.1-mini one
    budgets = {"store": "memory", "limits": [{"scope": "global", "limit_usd": limit}],
               "downgrade": []}
    with served(tmp_path, upstream, {**ON, "auto": True}, budgets=budgets) as client:
        raw = client.chat.completions.with_raw_response.create(model="auto",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Maybe Lyon."
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30"  # routed out up front
    assert upstream.requests("gpt-4.1-mini") == 0 and upstream.requests("gpt-4.1") == 0
    assert float(raw.headers["x-pointsman-cost-usd"]) <= limit


def test_budget_refusal_at_the_escalation_step_keeps_the_cheap_answer(
        upstream: UpstreamStub, tmp_path: Path) -> None:
    """No mid-tier request is allowed: the router still lists gpt-4.1-mini as a fallback,
    and the executor's reservation for that step is refused by the budget guard."""
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.\nConfidence: 0.3")
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.95")
    budgets = {"store": "memory", "limits": [
        {"scope": "global", "limit_requests": 0, "requests_tiers": ["mid", "premium"]}]}
    with served(tmp_path, upstream, {**ON, "max_steps": 2}, budgets=budgets) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Maybe Lyon."
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30>gpt-4.1-mini:budget_exceeded"
    assert upstream.requests("gpt-4.1-mini") == 0 and upstream.requests("gpt-4.1") == 0


def test_off_by_default(upstream: UpstreamStub, tmp_path: Path) -> None:
    with served(tmp_path, upstream) as client:
        assert "cascade" not in {m.id for m in client.models.list().data}
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="cascade", messages=QUESTION)
        plain = client.chat.completions.with_raw_response.create(model="auto",
                                                                 messages=QUESTION)
        assert "x-pointsman-cascade" not in plain.headers


def test_bad_cascade_config_names_the_field(upstream: UpstreamStub, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cascade: .*judge_model"):
        load_config(write_config(tmp_path, upstream, {"enabled": True, "judge": "model"}))
    with pytest.raises(ConfigError, match=r"cascade\.max_step"):
        load_config(write_config(tmp_path, upstream, {"max_step": 2}))


def test_judge_model_grades_through_the_gateway(upstream: UpstreamStub,
                                                tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Lyon.")
    upstream.behave("gpt-4.1-mini", text="Paris.")
    upstream.behave("gpt-4.1", text='{"grade": 2}')  # the judge: a poor grade for each
    cfg = {"enabled": True, "judge": "model", "judge_model": "gpt-4.1", "max_steps": 2}
    with served(tmp_path, upstream, cfg) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.20>gpt-4.1-mini:0.20"
    assert upstream.requests("gpt-4.1") == 2
    judged = upstream.last_request("gpt-4.1")
    assert judged is not None and "Paris." in judged["messages"][1]["content"]


def test_streamed_tool_call_survives_the_cascade(upstream: UpstreamStub, tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", tool_call=True)  # no confidence stated: accepted as is
    tool: Any = {"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}, "required": ["city"]}}}
    with served(tmp_path, upstream, ON) as client:
        stream = client.chat.completions.create(model="cascade", messages=QUESTION,
                                                tools=[tool], stream=True)
        chunks = list(stream)
    calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert [call.function.name for call in calls if call.function] == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests("gpt-4.1-mini") == 0


def test_logprob_judge_reads_the_upstreams_token_probabilities(upstream: UpstreamStub,
                                                               tmp_path: Path) -> None:
    """judge: logprob asks each step for logprobs; the stub answers gpt-4o-mini's tokens at
    log-probability -1.2 (mean probability 0.30) and gpt-4.1-mini's at -0.01 (0.99)."""
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.", logprob=-1.2)
    upstream.behave("gpt-4.1-mini", text="Paris.", logprob=-0.01)
    with served(tmp_path, upstream, {"enabled": True, "judge": "logprob"}) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30>gpt-4.1-mini:0.99"
    answer = raw.parse()
    assert answer.choices[0].message.content == "Paris."
    assert answer.choices[0].logprobs is not None  # the caller sees what the judge read
    asked = upstream.last_request("gpt-4o-mini")
    assert asked is not None and asked.get("logprobs") is True
