"""Key scopes hold on fallbacks: a key allowed only named models is never answered by
another model, on any door; a key allowed ``auto`` may be answered by its candidates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

NARROW, WIDE = "sk-narrow-0123456789", "sk-wide-0123456789"


@pytest.fixture()
def url(upstream: UpstreamStub, tmp_path: Path) -> Iterator[str]:
    data = {
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"],
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1"]}},
        "rules": [],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": upstream.base_url}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"retry": {"max_retries": 0}, "request_log": {"enabled": False},
                    "keys": [{"name": "narrow", "key": NARROW, "models": ["gpt-4o-mini"]},
                             {"name": "wide", "key": WIDE, "models": ["gpt-4o-mini", "auto"]}]},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    with running(create_app(load_config(path))) as base:
        yield base


def test_a_named_model_key_is_not_answered_by_a_fallback(url: str, upstream: UpstreamStub,
                                                         clients: ExitStack) -> None:
    upstream.behave("gpt-4o-mini", statuses=[500] * 10)
    client = clients.enter_context(
        openai.OpenAI(base_url=f"{url}/v1", api_key=NARROW, max_retries=0))
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    assert failed.value.response.headers["x-pointsman-attempts"] == "gpt-4o-mini"
    narrow = clients.enter_context(
        anthropic.Anthropic(base_url=url, api_key=NARROW, max_retries=0))
    with pytest.raises(anthropic.APIStatusError):
        narrow.messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert upstream.requests("gpt-4.1") == 0
    # a key that may also use auto could be answered by gpt-4.1 anyway: it may fall back
    wide = clients.enter_context(
        openai.OpenAI(base_url=f"{url}/v1", api_key=WIDE, max_retries=0))
    routed = wide.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert routed.headers["x-pointsman-model"] == "gpt-4.1"
