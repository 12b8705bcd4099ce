"""The local upstream stub speaks both wire formats and misbehaves on request."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from pointsman.testing import UpstreamStub

USER = {"role": "user", "content": "What is the capital of France?"}
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look it up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"},
                                                        "n": {"type": "integer"}}}}}


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def test_openai_answer_is_deterministic_with_consistent_usage(upstream: UpstreamStub) -> None:
    body = {"model": "m-a", "messages": [USER]}
    first = httpx.post(f"{upstream.base_url}/chat/completions", json=body).json()
    second = httpx.post(f"{upstream.base_url}/chat/completions", json=body).json()
    text = first["choices"][0]["message"]["content"]
    assert text == "stub answer from m-a: What is the capital of France?"
    assert second["choices"] == first["choices"]
    assert first["usage"] == {"prompt_tokens": 1 + 6, "completion_tokens": len(text.split()),
                              "total_tokens": 7 + len(text.split())}
    assert upstream.requests("m-a") == 2
    assert upstream.last_request("m-a") == body


def test_openai_stream_matches_the_answer_and_sends_usage_then_done(
        upstream: UpstreamStub) -> None:
    body = {"model": "m-a", "messages": [USER], "stream": True,
            "stream_options": {"include_usage": True}}
    response = httpx.post(f"{upstream.base_url}/chat/completions", json=body)
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "stub answer from m-a: What is the capital of France?"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(text.split())
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_tool_call_goes_to_the_first_tool_with_arguments_from_its_schema(
        upstream: UpstreamStub) -> None:
    upstream.behave("m-t", tool_call=True)
    body = {"model": "m-t", "messages": [USER], "tools": [TOOL]}
    answer = httpx.post(f"{upstream.base_url}/chat/completions", json=body).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"q": USER["content"][:40], "n": 1}
    # after the tool's result the model answers in text
    result = {"role": "tool", "tool_call_id": call["id"], "content": "Paris"}
    follow = {**body, "messages": [USER, choice["message"], result]}
    again = httpx.post(f"{upstream.base_url}/chat/completions", json=follow).json()
    assert again["choices"][0]["finish_reason"] == "stop"


def test_status_queue_then_normal_answers(upstream: UpstreamStub) -> None:
    upstream.behave("m-s", statuses=[429, 503], retry_after=7)
    url = f"{upstream.base_url}/chat/completions"
    body = {"model": "m-s", "messages": [USER]}
    first, second, third = (httpx.post(url, json=body) for _ in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert first.json()["error"]["message"] == "stub: injected status 429"
    assert second.status_code == 503
    assert third.status_code == 200
    assert upstream.requests("m-s") == 3
    assert upstream.requests("another") == 0


def test_control_endpoints_over_http(upstream: UpstreamStub) -> None:
    root = upstream.url
    made = httpx.post(f"{root}/_stub/behavior", json={"model": "m-h", "statuses": [500]})
    assert made.json()["behavior"]["statuses"] == [500]
    assert httpx.post(f"{upstream.base_url}/chat/completions",
                      json={"model": "m-h", "messages": [USER]}).status_code == 500
    stats = httpx.get(f"{root}/_stub/stats").json()
    assert stats["models"]["m-h"]["requests"] == 1
    assert stats["total"] == 1
    models = httpx.get(f"{upstream.base_url}/models").json()
    assert [m["id"] for m in models["data"]] == ["m-h"]
    bad = httpx.post(f"{root}/_stub/behavior", json={"model": "m-h", "colour": "red"})
    assert bad.status_code == 400
    assert "colour" in bad.json()["error"]["message"]
    httpx.post(f"{root}/_stub/reset")
    assert httpx.get(f"{root}/_stub/stats").json()["total"] == 0


def test_anthropic_messages_format_and_required_fields(upstream: UpstreamStub) -> None:
    url = f"{upstream.url}/v1/messages"
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    missing = httpx.post(url, json={"model": "c", "messages": [USER]}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"]["type"] == "invalid_request_error"
    body = {"model": "c", "max_tokens": 50, "messages": [USER], "system": "Be brief.",
            "stream": True}
    events = [json.loads(d)["type"] for d in sse_data(httpx.post(url, json=body,
                                                                 headers=headers).text)]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert "content_block_delta" in events


def test_require_key_refuses_other_keys_until_reset(upstream: UpstreamStub) -> None:
    upstream.require_key("sk-right")
    url = f"{upstream.base_url}/chat/completions"
    body = {"model": "m-k", "messages": [USER]}
    wrong = httpx.post(url, json=body, headers={"authorization": "Bearer sk-wrong"})
    right = httpx.post(url, json=body, headers={"authorization": "Bearer sk-right"})
    assert (wrong.status_code, right.status_code) == (401, 200)
    upstream.reset()
    assert httpx.post(url, json=body).status_code == 200


def test_a_hanging_request_does_not_block_shutdown() -> None:
    async def scenario() -> httpx.Response:
        async with UpstreamStub() as stub:
            stub.behave("m-hang", hang=True)
            async with httpx.AsyncClient() as client:
                call = asyncio.create_task(client.post(
                    f"{stub.base_url}/chat/completions",
                    json={"model": "m-hang", "messages": [USER]}))
                while stub.requests("m-hang") == 0:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(stub.stop)
                return await call

    response = asyncio.run(scenario())
    assert response.status_code == 503


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_cli_serves_in_its_own_process() -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pointsman.testing.upstream", "--port",
                             str(port), "--delay-ms", "5", "--tokens", "3"])
    try:
        answer: dict[str, Any] = {}
        for _ in range(200):
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                    json={"model": "m", "messages": [USER]}).json()
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert answer["choices"][0]["message"]["content"] == "stub answer from"
        assert answer["usage"]["completion_tokens"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("field,value", [("statuses", [99]), ("cut_mode", "explode")])
def test_invalid_behaviours_are_refused(upstream: UpstreamStub, field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        upstream.behave("m", **{field: value})


def test_logprobs_only_when_asked_in_answers_and_streams(upstream: UpstreamStub) -> None:
    upstream.behave("m-lp", text="a b c", logprob=-0.5)
    url = f"{upstream.base_url}/chat/completions"
    plain = httpx.post(url, json={"model": "m-lp", "messages": [USER]}).json()
    assert plain["choices"][0]["logprobs"] is None
    asked = httpx.post(url, json={"model": "m-lp", "messages": [USER], "logprobs": True}).json()
    content = asked["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == "a b c"
    assert {t["logprob"] for t in content} == {-0.5}
    streamed = httpx.post(url, json={"model": "m-lp", "messages": [USER], "stream": True,
                                     "logprobs": True}).text
    events = [json.loads(line[6:]) for line in streamed.splitlines()
              if line.startswith("data: {")]
    tokens = [e["choices"][0]["logprobs"]["content"][0] for e in events
              if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert "".join(t["token"] for t in tokens) == "a b c"
    assert all(t["logprob"] == -0.5 for t in tokens)
