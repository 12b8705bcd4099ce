"""The Responses API door: request → IR for every input item and tool kind, the answer and
the stream checked against the openai SDK's own models and stream accumulator, the
continuation helpers, and a type-confusion grid that must give InputError only."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import pytest
from openai import OpenAI, omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from pointsman import jsonio
from pointsman.doors.base import AnswerContext, Door, StreamUsage
from pointsman.doors.responses import ResponsesDoor, continue_input, conversation_items
from pointsman.errors import InputError, RateLimitedError, StreamBrokenError
from pointsman.gateway.errors import error_payload

Json = dict[str, Any]
DOOR = ResponsesDoor()
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
SHELL: Json = {"type": "function", "name": "shell", "description": "Run a command",
               "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
               "strict": False}


def chat(body: Mapping[str, Any]) -> Json:
    return DOOR.to_chat(body, {})


def ctx(body: Mapping[str, Any] | None = None) -> AnswerContext:
    return AnswerContext(model="gpt-test", request_id="req1",
                         request=body or {"model": "gpt-test", "input": "hi"})


def dropped(ir: Mapping[str, Any]) -> list[str]:
    return list(ir["_pointsman"].get("dropped", []))


def bad(body: Mapping[str, Any]) -> InputError:
    with pytest.raises(InputError) as info:
        chat(body)
    return info.value


def test_the_door_meets_the_protocol() -> None:
    door: Door = DOOR
    assert door.name == "responses"


# -- request → IR --------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    ir = chat({"model": "m", "input": "Hello", "instructions": "Be brief."})
    assert ir["messages"] == [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Hello"}]
    assert ir["model"] == "m"
    assert ir["_pointsman"] == {"door": "responses"}


def test_message_items_of_every_role_and_part() -> None:
    ir = chat({"model": "m", "input": [
        {"role": "developer", "content": "Rules."},
        {"type": "message", "role": "system", "content": [{"type": "input_text",
                                                           "text": "Sys."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Look:"},
            {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AA",
             "filename": "a.pdf"}]},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "A cat", "annotations": []},
            {"type": "refusal", "refusal": "no more"}]},
    ]})
    assert ir["messages"] == [
        {"role": "developer", "content": "Rules."},
        {"role": "system", "content": [{"type": "text", "text": "Sys."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA",
                                      "filename": "a.pdf"}}]},
        {"role": "assistant", "content": "A cat", "refusal": "no more"}]


@pytest.mark.parametrize(("part", "param"), [
    ({"type": "input_image", "file_id": "file-1", "detail": "auto"},
     "input[0].content[0].file_id"),
    ({"type": "input_file", "file_id": "file-1"}, "input[0].content[0].file_data"),
    ({"type": "input_text"}, "input[0].content[0].text"),
    ({"type": "input_audio", "data": "x"}, "input[0].content[0].type"),
    ({"type": "refusal", "refusal": "x"}, "input[0].content[0].type"),
])
def test_unservable_parts_are_input_errors(part: Json, param: str) -> None:
    error = bad({"model": "m", "input": [{"role": "user", "content": [part]}]})
    assert error.param == param


def test_an_assistant_message_cannot_hold_an_image() -> None:
    error = bad({"model": "m", "input": [{"role": "assistant", "content": [
        {"type": "input_image", "image_url": "https://x/y.png"}]}]})
    assert error.param == "input[0].content[0].type"


def test_function_calls_merge_into_one_assistant_turn() -> None:
    ir = chat({"model": "m", "input": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"c\":\"P\"}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"c\":\"R\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_text", "text": "rain"},
            {"type": "input_image", "image_url": "https://x/radar.png"}]},
        {"type": "function_call", "call_id": "c3", "name": "w", "arguments": "{}"},
    ]})
    assert ir["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w",
                                                          "arguments": "{\"c\":\"P\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "w",
                                                          "arguments": "{\"c\":\"R\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c3", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}]
    assert dropped(ir) == [
        "input[1]: reasoning",
        "input[6].output[1]: input_image (a tool message carries text only)"]


@pytest.mark.parametrize(("item", "param"), [
    ({"type": "item_reference", "id": "msg_1"}, "input[1].type"),
    ({"type": "computer_call_output", "call_id": "c"}, "input[1].type"),
    ({"type": 7}, "input[1].type"),
    ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[1].call_id"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": {}},
     "input[1].arguments"),
    ({"type": "function_call_output", "call_id": "c", "output": 3}, "input[1].output"),
    ({"type": "function_call_output", "call_id": "c", "output": [{"type": "x"}]},
     "input[1].output[0].type"),
    ({"role": "tool", "content": "x"}, "input[1].role"),
    ({"content": "x"}, "input[1].role"),
])
def test_bad_items_name_their_index(item: Json, param: str) -> None:
    error = bad({"model": "m", "input": [{"role": "user", "content": "hi"}, item]})
    assert error.param == param
    assert "input[1]" in error.message


def test_function_tools_are_kept_and_the_others_dropped() -> None:
    ir = chat({"model": "m", "input": "x", "tool_choice": "auto", "parallel_tool_calls": False,
               "tools": [SHELL, {"type": "web_search"}, {"type": "local_shell"},
                         {"type": "custom", "name": "apply_patch", "format": {"type": "text"}},
                         {"type": "mcp", "server_label": "s", "server_url": "https://s"},
                         {"type": "image_generation"},
                         {"type": "file_search", "vector_store_ids": ["v"]},
                         {"type": "function", "name": "noop", "parameters": None,
                          "strict": None}]})
    assert ir["tools"] == [
        {"type": "function", "function": {
            "name": "shell", "description": "Run a command", "strict": False,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "noop"}}]
    assert ir["tool_choice"] == "auto"
    assert ir["parallel_tool_calls"] is False
    assert [d.split(":")[0] for d in dropped(ir)] == [
        "tools[1]", "tools[2]", "tools[3]", "tools[4]", "tools[5]", "tools[6]"]
    assert "web_search" in dropped(ir)[0]


def test_additional_tools_items_declare_tools() -> None:
    """Codex's default model declares its tools in an ``additional_tools`` input item,
    grouped in namespaces: the default ``functions`` namespace's function tools join
    ``tools``; its custom tools and the other namespaces are dropped; no message is made."""
    sleep = {"type": "function", "name": "sleep", "parameters": {"type": "object"}}
    ir = chat({"model": "m", "tools": [SHELL], "input": [
        {"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "functions", "tools": [
                {"type": "custom", "name": "exec", "format": {"type": "text"}},
                {"type": "function", "name": "wait", "strict": False,
                 "parameters": {"type": "object"}}]},
            {"type": "namespace", "name": "clock", "tools": [sleep]}]},
        {"role": "user", "content": "hi"}]})
    assert [t["function"]["name"] for t in ir["tools"]] == ["shell", "wait"]
    assert ir["messages"] == [{"role": "user", "content": "hi"}]
    assert [d.split(":")[0] for d in dropped(ir)] == [
        "input[0].tools[0].tools[0]", "input[0].tools[1]"]


def test_bad_additional_tools_name_their_place() -> None:
    error = bad({"model": "m", "input": [
        {"type": "additional_tools", "tools": [{"type": "namespace", "name": "functions",
                                                "tools": [{"name": "x"}]}]},
        {"role": "user", "content": "hi"}]})
    assert error.param == "input[0].tools[0].tools[0]"
    assert bad({"model": "m", "input": [{"type": "additional_tools", "tools": "x"},
                                        {"role": "user", "content": "hi"}]}
               ).param == "input[0].tools"


def test_no_function_tools_means_no_tool_fields() -> None:
    ir = chat({"model": "m", "input": "x", "tools": [{"type": "web_search"}],
               "tool_choice": "auto", "parallel_tool_calls": True})
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & ir.keys()


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ({"type": "function", "name": "shell"}, {"type": "function",
                                             "function": {"name": "shell"}}),
])
def test_tool_choice(choice: Any, expected: Any) -> None:
    ir = chat({"model": "m", "input": "x", "tools": [SHELL], "tool_choice": choice})
    assert ir["tool_choice"] == expected


@pytest.mark.parametrize("choice", [
    {"type": "function", "name": "other"}, {"type": "web_search_preview"},
    {"type": "allowed_tools", "mode": "auto", "tools": []}, "sometimes", 3])
def test_bad_tool_choice(choice: Any) -> None:
    assert bad({"model": "m", "input": "x", "tools": [SHELL],
                "tool_choice": choice}).param.startswith("tool_choice")  # type: ignore[union-attr]


def test_required_tool_choice_needs_a_function_tool() -> None:
    assert bad({"model": "m", "input": "x", "tools": [{"type": "web_search"}],
                "tool_choice": "required"}).param == "tool_choice"


@pytest.mark.parametrize(("text", "expected"), [
    ({"format": {"type": "json_schema", "name": "r", "strict": True,
                 "schema": {"type": "object"}}},
     {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                             "strict": True}}),
    ({"format": {"type": "json_object"}, "verbosity": "low"}, {"type": "json_object"}),
    ({"format": {"type": "text"}}, None),
    ({"verbosity": "high"}, None),
])
def test_text_format(text: Json, expected: Json | None) -> None:
    ir = chat({"model": "m", "input": "x", "text": text})
    assert ir.get("response_format") == expected
    assert "verbosity" not in ir and "text" not in ir


def test_schemas_nested_too_deep_are_refused() -> None:
    deep: Json = {"type": "object"}
    for _ in range(70):
        deep = {"type": "object", "properties": {"a": deep}}
    tool = {**SHELL, "parameters": deep}
    assert bad({"model": "m", "input": "x", "tools": [tool]}).param == "tools[0].parameters"
    shallow = {**SHELL, "parameters": {"type": "object", "properties": {"a": {"type": "object",
               "properties": {"b": {"type": "array", "items": [{"type": "string"}]}}}}}}
    assert chat({"model": "m", "input": "x", "tools": [shallow]})["tools"][0]["function"][
        "parameters"] == shallow["parameters"]


@pytest.mark.parametrize(("text", "param"), [
    ({"format": {"type": "json_schema", "name": "r"}}, "text.format.schema"),
    ({"format": {"type": "json_schema", "schema": {}}}, "text.format.name"),
    ({"format": {"type": "grammar"}}, "text.format.type"),
    ({"format": {}}, "text.format.type"),
    ({"verbosity": "loud"}, "text.verbosity"),
])
def test_bad_text_format(text: Json, param: str) -> None:
    assert bad({"model": "m", "input": "x", "text": text}).param == param


def test_reasoning_and_sampling_fields() -> None:
    ir = chat({"model": "m", "input": "x", "reasoning": {"effort": "high", "summary": "auto"},
               "max_output_tokens": 500, "temperature": 0.2, "top_p": 1, "user": "u1",
               "prompt_cache_key": "k", "stream": True})
    assert ir["reasoning_effort"] == "high"
    assert ir["max_completion_tokens"] == 500
    assert (ir["temperature"], ir["top_p"], ir["user"]) == (0.2, 1, "u1")
    assert ir["prompt_cache_key"] == "k"
    assert ir["stream"] is True and ir["stream_options"] == {"include_usage": True}


def test_accepted_fields_are_not_sent() -> None:
    ir = chat({"model": "m", "input": "x", "store": False, "previous_response_id": "resp_1",
               "include": ["reasoning.encrypted_content"], "metadata": {"a": "b"},
               "truncation": "auto", "service_tier": "auto", "safety_identifier": "s",
               "stream": False})
    assert set(ir) == {"model", "messages", "_pointsman"}


@pytest.mark.parametrize(("field", "value"), [
    ("max_output_tokens", 0), ("max_output_tokens", True), ("reasoning", {"effort": "huge"}),
    ("temperature", "hot"), ("stream", "yes"), ("metadata", {"a": 1}), ("include", [1]),
    ("truncation", "sometimes"), ("conversation", "conv_1"), ("prompt", {"id": "p"}),
    ("background", True), ("model", ""),
])
def test_bad_top_level_fields(field: str, value: Any) -> None:
    param = bad({"model": "m", "input": "x", field: value}).param
    assert param is not None and param.startswith(field)


@pytest.mark.parametrize("body", [{"model": "m"}, {"model": "m", "input": []},
                                  {"model": "m", "input": [{"type": "reasoning",
                                                            "summary": []}]}])
def test_an_input_is_required(body: Json) -> None:
    assert bad(body).param == "input"


def test_a_codex_request() -> None:
    """What Codex CLI sends: hosted and freeform tools next to function tools, reasoning
    items with encrypted content, store false, include, prompt_cache_key, text.verbosity."""
    ir = chat({
        "model": "gpt-5-codex", "instructions": "You are Codex.", "stream": True,
        "input": [
            {"type": "message", "role": "developer", "content": [
                {"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "ls"}],
             "content": None, "encrypted_content": "gAAAA"},
            {"type": "function_call", "name": "shell", "arguments": "{\"cmd\":\"ls\"}",
             "call_id": "call_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}],
        "tools": [SHELL, {"type": "custom", "name": "apply_patch", "description": "patch",
                          "format": {"type": "grammar", "syntax": "lark",
                                     "definition": "start: x"}},
                  {"type": "web_search"}, {"type": "local_shell"}],
        "tool_choice": "auto", "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"}, "store": False,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "thread-1",
        "text": {"verbosity": "low"}})
    assert [m["role"] for m in ir["messages"]] == [
        "system", "developer", "user", "assistant", "tool"]
    assert [t["function"]["name"] for t in ir["tools"]] == ["shell"]
    assert ir["reasoning_effort"] == "medium"
    assert len(dropped(ir)) == 4
    jsonio.dumps(ir)


# -- continuation --------------------------------------------------------------------


def _turn_one() -> tuple[Json, Json]:
    body: Json = {"model": "m", "instructions": "Be brief.", "tools": [SHELL],
                  "input": "list files"}
    completion = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Listing.", "reasoning_content": "I should ls",
        "tool_calls": [{"id": "call_9", "type": "function",
                        "function": {"name": "shell", "arguments": "{\"cmd\":\"ls\"}"}}]}}]}
    return body, DOOR.answer(completion, ctx(body))


def test_conversation_items_are_the_input_and_output_items() -> None:
    body, response = _turn_one()
    items = conversation_items(body, response)
    assert [i["type"] for i in items] == ["message", "message", "function_call"]
    assert items[0] == {"type": "message", "role": "user", "content": "list files"}
    assert items[2]["call_id"] == "call_9"


def test_continue_input_replays_the_conversation() -> None:
    body, response = _turn_one()
    stored = conversation_items(body, response)
    nxt = continue_input(stored, {"model": "m", "previous_response_id": response["id"],
                                  "input": [{"type": "function_call_output",
                                             "call_id": "call_9", "output": "a.txt"}]})
    assert nxt["previous_response_id"] == response["id"]
    assert nxt["input"][:3] == stored
    ir = chat(nxt)
    assert ir["messages"] == [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "Listing.", "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "shell", "arguments": "{\"cmd\":\"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "a.txt"}]
    third = continue_input(conversation_items(nxt, response), {"model": "m", "input": "ok"})
    assert third["input"][-1] == {"type": "message", "role": "user", "content": "ok"}
    assert chat(third)["messages"][-1] == {"role": "user", "content": "ok"}


def test_continue_input_rejects_bad_shapes() -> None:
    with pytest.raises(InputError):
        continue_input([], {"model": "m", "input": 5})
    with pytest.raises(InputError):
        continue_input("items", {"model": "m", "input": "x"})  # type: ignore[arg-type]
    with pytest.raises(InputError):
        continue_input([5], {"model": "m", "input": "x"})  # type: ignore[list-item]
    with pytest.raises(InputError):
        continue_input([], [])  # type: ignore[arg-type]
    kept = continue_input([{"type": "message", "role": "user", "content": "a"}],
                          {"model": "m", "input": [5]})
    with pytest.raises(InputError) as info:
        chat(kept)
    assert info.value.param == "input[1]"


# -- the answer ----------------------------------------------------------------------


def completion(message: Json, finish: str = "stop", usage: Json | None = None) -> Json:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "up", "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                        "finish_reason": finish}],
            **({"usage": usage} if usage else {})}


USAGE = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
         "prompt_tokens_details": {"cached_tokens": 60},
         "completion_tokens_details": {"reasoning_tokens": 10}}


def test_a_text_answer() -> None:
    request = {"model": "gpt-test", "input": "hi", "instructions": "Be brief.",
               "tools": [SHELL, {"type": "web_search"}], "tool_choice": "auto",
               "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": False,
               "text": {"format": {"type": "json_object"}, "verbosity": "low"},
               "reasoning": {"effort": "low"}, "store": False, "metadata": {"k": "v"},
               "previous_response_id": "resp_0", "max_output_tokens": 64}
    body = DOOR.answer(completion({"content": "Hello!"}, usage=USAGE), ctx(request))
    response = Response.model_validate(body)
    assert response.id == "resp_req1" and response.status == "completed"
    assert response.output_text == "Hello!"
    assert response.created_at == 1700000000 and response.model == "gpt-test"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.total_tokens) == (100, 40, 140)
    assert response.usage.input_tokens_details.cached_tokens == 60
    assert response.usage.output_tokens_details.reasoning_tokens == 10
    assert response.instructions == "Be brief."
    assert [t.type for t in response.tools] == ["function"]
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0.5, 0.9, 64)
    assert response.parallel_tool_calls is False and body["store"] is False
    assert response.text is not None and response.text.verbosity == "low"
    assert response.reasoning is not None and response.reasoning.effort == "low"
    assert response.metadata == {"k": "v"} and response.previous_response_id == "resp_0"


def test_an_answer_echoes_a_schema_and_a_forced_function() -> None:
    request = {"model": "gpt-test", "input": "x", "tools": [SHELL],
               "tool_choice": {"type": "function", "name": "shell"},
               "text": {"format": {"type": "json_schema", "name": "r", "strict": True,
                                   "schema": {"type": "object"}}}}
    chat(request)
    response = Response.model_validate(DOOR.answer(completion({"content": "{}"}), ctx(request)))
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"
    assert response.tool_choice.type == "function"  # type: ignore[union-attr]
    assert response.tool_choice.name == "shell"  # type: ignore[union-attr]


def test_an_answer_with_reasoning_and_tool_calls() -> None:
    body = DOOR.answer(completion({"content": None, "reasoning_content": "Think.",
                                   "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}}]},
        "tool_calls"), ctx())
    response = Response.model_validate(body)
    assert [o.type for o in response.output] == ["reasoning", "function_call", "function_call"]
    assert body["output"][0]["summary"] == [{"type": "summary_text", "text": "Think."}]
    assert [(o["call_id"], o["name"], o["arguments"]) for o in body["output"][1:]] == [
        ("c1", "a", "{}"), ("c2", "b", "{\"x\":1}")]
    assert len({o["id"] for o in body["output"]}) == 3
    assert response.usage is None and response.output_text == ""


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"),
                                                 ("content_filter", "content_filter")])
def test_a_cut_short_answer_is_incomplete(finish: str, reason: str) -> None:
    response = Response.model_validate(DOOR.answer(completion({"content": "Hel"}, finish),
                                                   ctx()))
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == reason


def test_a_refusal_answer() -> None:
    body = DOOR.answer(completion({"content": None, "refusal": "I can't."}), ctx())
    Response.model_validate(body)
    assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't."}]


def test_error_body_is_openai_shaped() -> None:
    error = InputError("'input' is required", "input")
    assert DOOR.error_body(error, 400) == error_payload(error)[1]
    assert DOOR.error_body(error, 400)["error"]["param"] == "input"


# -- the stream ----------------------------------------------------------------------


def chunk(delta: Json, finish: str | None = None) -> Json:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def parse(data: bytes) -> list[Json]:
    """Split SSE bytes into events, checking each frame's event name against its type."""
    events = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        head, _, body = frame.partition("\n")
        assert body.startswith("data: ")
        event = jsonio.loads(body.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    return events


def stream(batches: Sequence[Sequence[Json]], usage: StreamUsage | None = None,
           request: Json | None = None) -> list[Json]:
    encoder = DOOR.encoder(ctx(request))
    data = b"".join(encoder.encode(batch) for batch in batches)
    return parse(data + encoder.close(usage or StreamUsage(100, 40, 60, 0, 10)))


def check(events: list[Json]) -> Any:
    """Every event validates against the SDK; sequence numbers rise from 0; the SDK's
    accumulator takes the stream; returns the accumulator's state."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    return state


def snapshot(state: Any) -> Any:
    return state._ResponseStreamState__current_snapshot


def final(state: Any) -> Response:
    response = state._completed_response
    assert isinstance(response, Response)
    return response


def same_as_answer(events: list[Json], message: Json, finish: str) -> None:
    """The stream's final response is the answer for the same IR message."""
    done = events[-1]["response"]
    expected = DOOR.answer(completion(message, finish, USAGE), ctx())
    for key in ("created_at", "completed_at"):
        done.pop(key, None)
        expected.pop(key, None)
    assert done == expected


def test_a_text_stream() -> None:
    events = stream([[chunk({"role": "assistant", "content": ""})],
                     [chunk({"content": "Hel"}), chunk({"content": "lo"})],
                     [chunk({}, "stop")], [{"id": "c", "choices": [], "usage": USAGE}]])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    state = check(events)
    assert final(state).output_text == "Hello"
    assert snapshot(state).output[0].content[0].text == "Hello"
    usage = final(state).usage
    assert usage is not None and usage.input_tokens == 100
    same_as_answer(events, {"content": "Hello"}, "stop")


def _call_delta(index: int, args: str, id_: str | None = None, name: str | None = None
                ) -> Json:
    call: Json = {"index": index, "function": {"arguments": args}}
    if id_:
        call.update(id=id_, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


CALLS = [[chunk(_call_delta(0, "", "c1", "a")), chunk(_call_delta(0, "{\"x\""))],
         [chunk(_call_delta(0, ":1}")), chunk(_call_delta(1, "{}", "c2", "b"))],
         [chunk({}, "tool_calls")]]
CALLS_MESSAGE = [{"id": "c1", "type": "function", "function": {"name": "a",
                                                               "arguments": "{\"x\":1}"}},
                 {"id": "c2", "type": "function", "function": {"name": "b",
                                                               "arguments": "{}"}}]


def test_a_tool_call_stream() -> None:
    events = stream(CALLS)
    state = check(events)
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [(i["type"], i["call_id"], i["arguments"]) for i in added] == [
        ("function_call", "c1", ""), ("function_call", "c2", "")]
    args_done = [e["arguments"] for e in events
                 if e["type"] == "response.function_call_arguments.done"]
    assert args_done == ["{\"x\":1}", "{}"]
    assert [o.arguments for o in snapshot(state).output] == ["{\"x\":1}", "{}"]
    assert [o.type for o in final(state).output] == ["function_call", "function_call"]
    same_as_answer(events, {"content": None, "tool_calls": CALLS_MESSAGE}, "tool_calls")


def test_text_then_tool_calls() -> None:
    events = stream([[chunk({"content": "Let me check."})], *CALLS])
    state = check(events)
    assert [o.type for o in final(state).output] == ["message", "function_call",
                                                    "function_call"]
    kinds = [e["type"] for e in events]
    assert kinds.index("response.output_text.done") < kinds.index(
        "response.function_call_arguments.delta")
    assert snapshot(state).output[0].content[0].text == "Let me check."
    same_as_answer(events, {"content": "Let me check.", "tool_calls": CALLS_MESSAGE},
                   "tool_calls")


def test_reasoning_then_text() -> None:
    events = stream([[chunk({"reasoning_content": "Think"}),
                      chunk({"reasoning_content": "ing."}),
                      chunk({"thinking_blocks": [{"type": "thinking", "signature": "s"}]})],
                     [chunk({"content": "Done."}, "stop")]])
    kinds = [e["type"] for e in events]
    assert kinds[2:9] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done"]
    state = check(events)
    output = final(state).output
    assert [o.type for o in output] == ["reasoning", "message"]
    assert events[8]["item"]["summary"] == [{"type": "summary_text", "text": "Thinking."}]
    assert final(state).output_text == "Done."
    same_as_answer(events, {"content": "Done.", "reasoning_content": "Thinking."}, "stop")


def test_a_stream_cut_short_ends_incomplete() -> None:
    events = stream([[chunk({"content": "Hel"}, "length")]])
    check(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_empty_stream_still_completes() -> None:
    encoder = DOOR.encoder(ctx())
    events = parse(encoder.close(StreamUsage(5, 0)))
    check(events)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.completed"]
    assert events[-1]["response"]["output"] == []


def test_a_broken_stream_fails() -> None:
    encoder = DOOR.encoder(ctx())
    data = encoder.encode([chunk({"content": "Hel"})])
    events = parse(data + encoder.fail(StreamBrokenError("upstream closed early", "up")))
    state = check(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_broken"
    failed = Response.model_validate(events[-1]["response"])
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error"
    assert "upstream closed early" in failed.error.message
    assert failed.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert snapshot(state).output[0].content[0].text == "Hel"


def test_a_rate_limit_failure_says_when_to_retry() -> None:
    encoder = DOOR.encoder(ctx())
    events = parse(encoder.fail(RateLimitedError("slow down", "up", retry_after=2.5)))
    check(events)
    error = events[-1]["response"]["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "try again in 2.5s" in error["message"]


# -- type confusion ------------------------------------------------------------------


def _deep(depth: int = 1000) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BASE: Json = {
    "model": "m", "instructions": "x", "stream": True, "temperature": 0.1, "top_p": 1.0,
    "max_output_tokens": 10, "parallel_tool_calls": True, "user": "u",
    "prompt_cache_key": "k", "store": False, "previous_response_id": "resp_1",
    "include": ["reasoning.encrypted_content"], "metadata": {"a": "b"}, "truncation": "auto",
    "service_tier": "auto", "safety_identifier": "s", "tool_choice": "auto",
    "reasoning": {"effort": "low", "summary": "auto"},
    "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "n",
                                            "schema": {"type": "object"}, "strict": True}},
    "tools": [dict(SHELL), {"type": "web_search"}],
    "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "t"},
            {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"}]},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "t"}]},
        {"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": [
            {"type": "input_text", "text": "t"}]},
        {"type": "reasoning", "summary": []}],
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path in the body."""
    out: list[tuple[Any, ...]] = []
    children = value.items() if isinstance(value, dict) else enumerate(
        value if isinstance(value, list) else ())
    for key, child in children:
        out.append((*path, key))
        out.extend(_paths(child, (*path, key)))
    return out


def _replace(path: tuple[Any, ...], value: Any) -> Json:
    body = copy.deepcopy(BASE)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def test_the_base_body_translates() -> None:
    ir = chat(BASE)
    assert ir["messages"][0] == {"role": "system", "content": "x"}
    assert [m["role"] for m in ir["messages"]] == ["system", "user", "assistant", "tool"]
    assert ir["messages"][2]["tool_calls"][0]["id"] == "c"


@pytest.mark.parametrize("value", [5, "x", [], {}, None, "deep"],
                         ids=["int", "str", "list", "dict", "null", "deep"])
def test_type_confusion_gives_input_errors_only(value: Any) -> None:
    replacement = _deep() if value == "deep" else value
    paths = [*_paths(BASE), ("body",)]
    errors = 0
    for path in paths:
        body: Any = replacement if path == ("body",) else _replace(path, replacement)
        try:
            ir = chat(body)
        except InputError as exc:
            errors += 1
            assert exc.message
            continue
        jsonio.dumps(ir)  # what passes is plain JSON
    assert errors > len(paths) // 4


@pytest.mark.parametrize("value", [5, "x", [], {}, None, "deep"])
def test_type_confusion_in_the_answer_and_stream(value: Any) -> None:
    """A malformed IR answer or chunk never raises: the lifecycle hands over only what the
    providers built, but the door must not be the place a 500 comes from."""
    junk = _deep() if value == "deep" else value
    answer = DOOR.answer({"choices": [{"message": {"content": junk, "tool_calls": junk,
                                                   "reasoning_content": junk},
                                       "finish_reason": junk}], "usage": junk}, ctx())
    Response.model_validate(answer)
    encoder = DOOR.encoder(ctx())
    data = encoder.encode([{"choices": junk}, {"choices": [{"delta": junk}]},
                           chunk({"content": junk, "tool_calls": [junk]}, None)])
    check(parse(data + encoder.close(StreamUsage(1, 1))))


# -- the openai SDK as the client ----------------------------------------------------


class FakeGateway:
    """An httpx transport handler that answers like the gateway will: the SDK's request
    through ``to_chat``, then the scripted IR answer through ``answer`` or the encoder."""

    def __init__(self, batches: Sequence[Sequence[Json]], message: Json, finish: str,
                 error: StreamBrokenError | None = None) -> None:
        self.batches, self.message, self.finish, self.error = batches, message, finish, error
        self.seen: list[Json] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = jsonio.loads(request.content)
        ir = chat(body)
        self.seen.append(ir)
        context = ctx(body)
        if not ir.get("stream"):
            answer = DOOR.answer(completion(self.message, self.finish, USAGE), context)
            return httpx2.Response(200, json=answer)
        encoder = DOOR.encoder(context)
        data = b"".join(encoder.encode(batch) for batch in self.batches)
        data += encoder.fail(self.error) if self.error else encoder.close(StreamUsage(9, 3))
        return httpx2.Response(200, content=data,
                              headers={"content-type": "text/event-stream"})

    def client(self) -> OpenAI:
        return OpenAI(api_key="sk-test", base_url="http://gateway.test/v1", max_retries=0,
                      http_client=httpx2.Client(transport=httpx2.MockTransport(self)))


def test_the_sdk_creates_a_response() -> None:
    gateway = FakeGateway([], {"content": "Hello!"}, "stop")
    with gateway.client() as client:
        response = client.responses.create(
            model="gpt-test", instructions="Be brief.",
            input=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "name": "shell", "parameters": {"type": "object"},
                    "strict": False}])
    assert response.output_text == "Hello!"
    assert response.usage is not None and response.usage.total_tokens == 140
    assert gateway.seen[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "hi"}]
    assert gateway.seen[0]["tools"][0]["function"]["name"] == "shell"


def test_the_sdk_streams_text_and_tool_calls() -> None:
    gateway = FakeGateway([[chunk({"content": "Let me check."})], *CALLS], {}, "stop")
    with gateway.client() as client, client.responses.stream(
            model="gpt-test", input="weather?") as events:
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        response = events.get_final_response()
    assert deltas == ["Let me check."]
    assert response.output_text == "Let me check."
    calls = [o for o in response.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("c1", "a", "{\"x\":1}"), ("c2", "b", "{}")]
    assert response.usage is not None and response.usage.input_tokens == 9
    assert gateway.seen[0]["stream_options"] == {"include_usage": True}


def test_the_sdk_sees_a_failed_stream() -> None:
    gateway = FakeGateway([[chunk({"content": "Hel"})]], {}, "stop",
                          StreamBrokenError("upstream closed early"))
    with gateway.client() as client:
        events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.code == "server_error"
