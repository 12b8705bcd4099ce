"""Bad input is a 400 naming the field before any upstream call (never a 500 that resets
the connection, never an upstream error), in the caller's door's shape; a keys-database
admin key may read ``/v1/spend``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing import fuzz
from pointsman.testing.upstream import UpstreamStub

CLAUDE = "claude-haiku-4-5"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture(scope="module")
def url(stub: UpstreamStub) -> Iterator[str]:
    with running(create_app(fuzz.gateway_config(stub.url, stub.base_url))) as base:
        yield base


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body, headers={"authorization": f"Bearer {fuzz.KEY}"})


BAD_CHAT = [
    ({"stop": 5}, "stop"),
    ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format"),
    ({"messages": [*USER, {"role": "assistant", "content": "a", "tool_calls": 5}, *USER]},
     "messages"),
    ({"messages": [{"role": "system", "content": [{"type": "text", "text": 5}]}, *USER]},
     "messages"),
    ({"tools": [{"type": "function", "function": {"name": 5}}]}, "tools"),
    ({"tool_choice": {"type": "function", "function": "f"}}, "tool_choice"),
    ({"temperature": "hot"}, "temperature"),
    ({"stop": ["ok", ""]}, "stop"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]},
     "messages"),
]


@pytest.mark.parametrize(("extra", "param"), BAD_CHAT)
def test_bad_fields_are_a_400_naming_them_and_never_reach_the_upstream(
        url: str, stub: UpstreamStub, extra: dict[str, Any], param: str) -> None:
    stub.reset()
    with httpx.Client(base_url=url) as client:
        answer = post(client, "/v1/chat/completions",
                      {"model": CLAUDE, "messages": USER, **extra})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["param"].split("[", 1)[0] == param
        assert error["message"].lstrip("'").startswith(param)
        # the same connection still serves the next request
        assert post(client, "/v1/chat/completions",
                    {"model": CLAUDE, "messages": USER}).status_code == 200
    assert stub.requests("claude-haiku-4-5") == 1


def test_too_deep_json_is_refused_at_parse_time_in_each_doors_shape(url: str) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    with httpx.Client(base_url=url) as client:
        headers = {"authorization": f"Bearer {fuzz.KEY}", "content-type": "application/json"}
        chat = client.post("/v1/chat/completions", headers=headers, content=(
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
            b'"user": ' + deep + b"}"))
        messages = client.post("/v1/messages", headers=headers, content=(
            b'{"model": "gpt-4o-mini", "max_tokens": 5, "metadata": ' + deep + b"}"))
    assert chat.status_code == 400 and "deep" in chat.json()["error"]["message"]
    assert messages.status_code == 400 and messages.json()["type"] == "error"
    assert "deep" in messages.json()["error"]["message"]


def test_a_plain_request_still_passes_every_wire(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        for model in fuzz.WIRES:
            body = fuzz.chat_body(model)
            assert post(client, "/v1/chat/completions", body).status_code == 200, model


def test_untranslatable_is_an_input_error() -> None:
    from pointsman.errors import InputError
    from pointsman.providers.anthropic_wire import to_anthropic

    with pytest.raises(InputError, match="Anthropic Messages"):
        to_anthropic({"model": "m", "messages": USER, "stop": 5}, 16)


def test_a_keys_database_admin_key_may_read_spend(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o-mini"]}, "rules": [],
        "gateway": {"keys_db": str(db), "request_log": {"enabled": False}},
        "budgets": {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
                    "limits": [{"scope": "global", "limit_usd": 10}]}}))

    def add(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pointsman", "keys", "add", *args,
                               "--config", str(path)], capture_output=True, text=True,
                              timeout=60, check=True)
        return done.stdout.strip()

    admin, plain = add("ops", "--admin"), add("app")
    with running(create_app(load_config(path))) as base, httpx.Client(base_url=base) as h:
        assert h.get("/v1/spend", headers={"authorization": f"Bearer {admin}"}
                     ).status_code == 200
        assert h.get("/v1/spend", headers={"x-api-key": admin}).status_code == 200
        assert h.get("/v1/spend", headers={"authorization": f"Bearer {plain}"}
                     ).status_code == 403
        assert h.get("/v1/spend", headers={"authorization": "Bearer sk-nope-123456"}
                     ).status_code == 403
        assert h.get("/v1/spend").status_code == 401
