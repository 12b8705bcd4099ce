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


# -- the OpenAI Responses wire, checked with the official SDK ------------------------------

def _responses_client(upstream: UpstreamStub) -> Any:
    import openai

    return openai.OpenAI(base_url=upstream.base_url, api_key="sk-stub", max_retries=0)


RESPONSES_TOOL: dict[str, Any] = {
    "type": "function", "name": "lookup", "description": "Look it up", "strict": False,
    "parameters": {"type": "object", "properties": {"q": {"type": "string"},
                                                    "n": {"type": "integer"}}}}


def test_responses_create_with_the_openai_sdk(upstream: UpstreamStub) -> None:
    with _responses_client(upstream) as client:
        response = client.responses.create(model="m-r", input="What is the capital of France?",
                                           instructions="Be brief.")
    assert response.output_text == "stub answer from m-r: What is the capital of France?"
    assert response.status == "completed"
    assert response.usage.input_tokens == 2 + 1 + 6
    assert response.usage.output_tokens == len(response.output_text.split())
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_with_the_openai_sdk_validates_every_event(
        upstream: UpstreamStub) -> None:
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    upstream.behave("m-r", cached_tokens=4)
    deltas: list[str] = []
    with _responses_client(upstream) as client, \
            client.responses.stream(model="m-r", input=[USER]) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == \
        "stub answer from m-r: What is the capital of France?"
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 4
    raw = httpx.post(f"{upstream.base_url}/responses", json={
        "model": "m-r", "input": "a b c", "stream": True, "max_output_tokens": 2,
        "include": ["message.output_text.logprobs"]}).text
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    events = [adapter.validate_python(json.loads(d)) for d in sse_data(raw)]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert [e.logprobs[0].logprob for e in events if e.type == "response.output_text.delta"
            ] == [-0.05, -0.05]


def test_responses_tool_call_and_reasoning_with_the_openai_sdk(upstream: UpstreamStub) -> None:
    from openai.types.responses import Response

    upstream.behave("m-rt", tool_call=True, reasoning_tokens=7)
    with _responses_client(upstream) as client:
        with client.responses.stream(model="m-rt", input=[USER], tools=[RESPONSES_TOOL],
                                     reasoning={"effort": "low", "summary": "auto"}) as stream:
            final = stream.get_final_response()
        reasoning, call = final.output
        assert reasoning.type == "reasoning"
        assert reasoning.summary[0].text == f"Thinking about: {USER['content'][:40]}"
        assert call.type == "function_call" and call.name == "lookup"
        assert json.loads(call.arguments) == {"q": USER["content"][:40], "n": 1}
        assert final.usage is not None and \
            final.usage.output_tokens_details.reasoning_tokens == 7
        result = {"type": "function_call_output", "call_id": call.call_id, "output": "Paris"}
        again = client.responses.create(model="m-rt", tools=[RESPONSES_TOOL], input=[
            USER, {"type": "function_call", "call_id": call.call_id, "name": "lookup",
                   "arguments": call.arguments}, result])
    assert again.output[-1].type == "message"
    raw = httpx.post(f"{upstream.base_url}/responses",
                     json={"model": "m-rt", "input": "hi", "tools": [RESPONSES_TOOL]}).json()
    assert Response.model_validate(raw).output[-1].type == "function_call"


def test_responses_errors_and_unknown_fields(upstream: UpstreamStub) -> None:
    import openai

    upstream.behave("m-re", statuses=[429], retry_after=3)
    with _responses_client(upstream) as client, \
            pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="m-re", input="hi")
    assert limited.value.response.headers["retry-after"] == "3"
    url = f"{upstream.base_url}/responses"
    unknown = httpx.post(url, json={"model": "m-re", "input": "hi", "messages": []})
    assert unknown.status_code == 400 and "messages" in unknown.json()["error"]["message"]
    empty = httpx.post(url, json={"model": "m-re", "input": []})
    assert empty.status_code == 400


# -- cached and reasoning tokens on the other wires ----------------------------------------

def test_openai_usage_details_only_when_set(upstream: UpstreamStub) -> None:
    upstream.behave("m-cu", cached_tokens=5, reasoning_tokens=3)
    url = f"{upstream.base_url}/chat/completions"
    usage = httpx.post(url, json={"model": "m-cu", "messages": [USER]}).json()["usage"]
    words = 10  # "stub answer from m-cu: What is the capital of France?"
    assert usage == {"prompt_tokens": 7 + 5, "completion_tokens": words + 3,
                     "total_tokens": 12 + words + 3,
                     "prompt_tokens_details": {"cached_tokens": 5},
                     "completion_tokens_details": {"reasoning_tokens": 3}}
    streamed = httpx.post(url, json={"model": "m-cu", "messages": [USER], "stream": True,
                                     "stream_options": {"include_usage": True}}).text
    assert json.loads(sse_data(streamed)[-2])["usage"] == usage


def test_anthropic_cache_fields_only_when_set(upstream: UpstreamStub) -> None:
    url = f"{upstream.url}/v1/messages"
    headers = {"anthropic-version": "2023-06-01"}
    body = {"model": "c-cu", "max_tokens": 50, "messages": [USER]}
    plain = httpx.post(url, json=body, headers=headers).json()["usage"]
    assert set(plain) == {"input_tokens", "output_tokens"}
    upstream.behave("c-cu", cached_tokens=30, cache_creation_tokens=8, reasoning_tokens=2)
    usage = httpx.post(url, json=body, headers=headers).json()["usage"]
    assert usage == {"input_tokens": 7, "cache_read_input_tokens": 30,
                     "cache_creation_input_tokens": 8,
                     "output_tokens": plain["output_tokens"] + 2}
    events = [json.loads(d) for d in sse_data(httpx.post(url, json={**body, "stream": True},
                                                         headers=headers).text)]
    assert events[0]["message"]["usage"]["cache_read_input_tokens"] == 30
    assert events[-2]["usage"]["output_tokens"] == usage["output_tokens"]


def test_token_counts_must_not_be_negative(upstream: UpstreamStub) -> None:
    with pytest.raises(ValueError, match="cached_tokens"):
        upstream.behave("m", cached_tokens=-1)
