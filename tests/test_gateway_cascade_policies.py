"""``cascade.policies``: a cascade per task type, rule or requested model (the best chain
differs by task), through the ``openai`` SDK, the gateway and the upstream stub; the
headers and the log say which policy applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pointsman.config import load_config
from pointsman.errors import ConfigError
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub
from test_gateway_cascade import QUESTION, records, served, write_config

CODE: Any = [{"role": "user", "content": "Write a Python function that reverses a linked "
              "list, with tests."}]
POLICIES = {"enabled": True, "judge": "self_reported", "threshold": 0.7, "policies": [
    {"name": "code", "when": {"task_type": ["code"]}, "chain": ["gpt-4.1-mini", "gpt-4.1"],
     "threshold": 0.9},
    {"name": "strict-name", "when": {"requested_model": ["cascade-0.5"]}, "max_steps": 1}]}


def test_a_task_policy_replaces_the_chain_and_threshold(upstream: UpstreamStub,
                                                        tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="def f(): pass\nConfidence: 0.8")
    upstream.behave("gpt-4.1-mini", text="def rev(head): ...\nConfidence: 0.85")
    upstream.behave("gpt-4.1", text="def rev(head): ...  # tested\nConfidence: 0.95")
    with served(tmp_path, upstream, POLICIES) as client:
        code = client.chat.completions.with_raw_response.create(model="cascade",
                                                                messages=CODE)
        plain = client.chat.completions.with_raw_response.create(model="cascade",
                                                                 messages=QUESTION)
    assert code.headers["x-pointsman-cascade-policy"] == "code"
    # the code chain starts at gpt-4.1-mini; 0.85 is below the policy's 0.9: escalates
    assert code.headers["x-pointsman-cascade"] == "gpt-4.1-mini:0.85>gpt-4.1:0.95"
    assert plain.headers["x-pointsman-cascade-policy"] == "default"
    assert plain.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.80"  # 0.8 ≥ 0.7
    first, second = records(tmp_path)
    assert "cascade policy code@0.9: gpt-4.1-mini:0.85>gpt-4.1:0.95" in \
        first["decision"]["reason"]
    assert "cascade@0.7: gpt-4o-mini:0.80" in second["decision"]["reason"]


def test_a_requested_model_policy_keeps_the_names_threshold(upstream: UpstreamStub,
                                                            tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Lyon.\nConfidence: 0.3")
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.95")
    with served(tmp_path, upstream, POLICIES) as client:
        one = client.chat.completions.with_raw_response.create(model="cascade-0.5",
                                                               messages=QUESTION)
        other = client.chat.completions.with_raw_response.create(model="cascade-0.2",
                                                                 messages=QUESTION)
    assert one.headers["x-pointsman-cascade-policy"] == "strict-name"
    assert one.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30"  # max_steps 1
    assert other.headers["x-pointsman-cascade-policy"] == "default"
    assert other.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30"  # 0.3 ≥ 0.2


def test_policy_config_errors_name_the_field(upstream: UpstreamStub, tmp_path: Path) -> None:
    def cascade(policy: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"enabled": True, "policies": [policy], **extra}

    with pytest.raises(ConfigError, match=r"cascade\.policies\.0\.chain: unknown model"):
        create_app(load_config(write_config(tmp_path, upstream, cascade(
            {"when": {"task_type": ["code"]}, "chain": ["gpt-9"]}))))
    with pytest.raises(ConfigError, match=r"cascade\.policies\.0\.when\.task"):
        load_config(write_config(tmp_path, upstream, cascade({"when": {"task": ["code"]}})))
    with pytest.raises(ConfigError, match=r"agreement: required"):
        load_config(write_config(tmp_path, upstream, cascade(
            {"when": {"rule": ["x"]}, "judge": ["agreement", "self_reported"]})))


def test_a_rule_policy_applies_when_that_rule_decided(upstream: UpstreamStub,
                                                      tmp_path: Path) -> None:
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.9")
    rules = [{"name": "lookups", "when": {"task_type": ["lookup"]},
              "then": {"model": "gpt-4o-mini"}}]
    cascade = {"enabled": True, "policies": [
        {"name": "by-rule", "when": {"rule": ["lookups"]}, "chain": ["gpt-4.1-mini"]}]}
    with served(tmp_path, upstream, cascade, rules=rules) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-cascade-policy"] == "by-rule"
    assert raw.headers["x-pointsman-cascade"] == "gpt-4.1-mini:0.90"
    assert upstream.requests("gpt-4o-mini") == 0
