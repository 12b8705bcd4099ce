"""Request body and headers → RouteRequest (multi-part content, tools, JSON mode, vision,
limits, metadata from headers and from the key's owner)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from pointsman.errors import InputError
from pointsman.gateway.parse import parse_chat


def request(headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions",
                    "headers": raw, "query_string": b""})


def test_multi_part_content_tools_json_and_vision() -> None:
    body: dict[str, Any] = {
        "model": "auto", "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 300, "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "a"}}] * 3,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "1", "type": "function",
                             "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "done"}]}
    chat = parse_chat(request(), body, {})
    route = chat.route
    assert chat.stream and chat.include_usage and chat.model == "auto"
    assert [m.content for m in route.messages] == ["Be brief.", "What is in this picture?", "",
                                                   "done"]
    assert route.tools_count == 3 and route.needs_json and route.needs_vision
    assert route.max_output_tokens == 300
    assert route.required_capabilities == {"tools", "json_mode", "vision", "streaming"}


def test_metadata_from_headers_and_the_keys_owner() -> None:
    headers = {"x-pointsman-user": "mallory", "x-pointsman-plan": "premium",
               "x-pointsman-session": "s-1", "x-pointsman-task-type": "code",
               "x-pointsman-latency-target-ms": "250", "x-pointsman-realtime": "false"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    owner = {"key": "alice-key", "user": "alice", "team": "red", "plan": None}
    meta = parse_chat(request(headers), body, owner, trust_headers=False).route.metadata
    assert meta == {"door": "chat", "key": "alice-key", "user": "alice", "team": "red",
                    "session": "s-1", "task_type": "code", "latency_target_ms": 250.0,
                    "realtime": False, "requested_model": "auto"}
    trusted = parse_chat(request(headers), body, {}, trust_headers=True).route.metadata
    assert trusted["user"] == "mallory" and trusted["plan"] == "premium"


@pytest.mark.parametrize(("body", "message"), [
    ({"model": 5, "messages": []}, "'model' is required"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
     "must be an object with a 'type'"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "text must be a string"),
    ({"model": "auto", "messages": ["hi"]}, "must be an object"),
    ({"model": "auto", "tools": {}, "messages": [{"role": "user", "content": "x"}]},
     "'tools' must be a list"),
    ({"model": "auto", "max_tokens": True, "messages": [{"role": "user", "content": "x"}]},
     "'max_tokens' must be a positive integer"),
])
def test_bad_shapes_name_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_chat(request(), body, {})
