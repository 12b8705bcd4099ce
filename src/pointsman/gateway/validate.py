"""Strict types for every IR field the gateway reads or passes on, checked before any
upstream call.

Every door's IR (a Chat Completions body) goes through :func:`check_fields` in
:func:`pointsman.gateway.parse.parse_chat`: a field of the wrong type is an
:class:`~pointsman.errors.InputError` (400) naming it, never a TypeError in an adapter (a
500) and never an upstream error (which would count against the deployment's health for
every caller). Plain ``isinstance`` checks, dispatched only for the fields a body has, so
a plain chat request pays a few dictionary look-ups. Fields the gateway does not know are
passed on as they are (the format allows extras); :func:`check_depth` keeps any body
within what the JSON writer can serialise again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from pointsman.errors import InputError

MAX_DEPTH = 64  # orjson writes at most 254 levels; the IR and upstream bodies add a few
Check = Callable[[Any, str], None]


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(where: str, what: str, value: Any) -> InputError:
    param = where.split("[", 1)[0].split(".", 1)[0]
    return InputError(f"'{where}' must be {what}, got {_type_name(value)}", param)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise _fail(where, "a boolean", value)


def obj(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)


def integer(value: Any, where: str) -> None:
    if not is_int(value):
        raise _fail(where, "an integer", value)


def number(value: Any, where: str) -> None:
    if not is_number(value):
        raise _fail(where, "a finite number", value)


def ranged(low: float, high: float) -> Check:
    def check(value: Any, where: str) -> None:
        if not is_number(value) or not low <= value <= high:
            raise _fail(where, f"a number from {low:g} to {high:g}", value)
    return check


def positive(value: Any, where: str) -> None:
    if not is_int(value) or value < 1:
        raise _fail(where, "a positive integer", value)


def strings(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "a list of strings", value)


def stop(value: Any, where: str) -> None:
    """A stop sequence or a list of them, each non-empty (an upstream refuses others)."""
    items = [value] if isinstance(value, str) else value
    if (not isinstance(items, list) or len(items) > 16
            or not all(isinstance(v, str) and v for v in items)):
        raise _fail(where, "a non-empty string or a list of at most 16 of them", value)


def fields(value: Any, where: str, checks: Mapping[str, Check]) -> None:
    """``value`` is an object whose known fields (those present) pass their checks."""
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    for name, item in value.items():
        check = checks.get(name)
        if check is not None and item is not None:
            check(item, f"{where}.{name}")


def nested(checks: Mapping[str, Check]) -> Check:
    return lambda value, where: fields(value, where, checks)


def list_of(check: Check) -> Check:
    def each(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _fail(where, "a list", value)
        for i, item in enumerate(value):
            check(item, f"{where}[{i}]")
    return each


def one_of(*allowed: str) -> Check:
    def check(value: Any, where: str) -> None:
        if value not in allowed or not isinstance(value, str):
            raise InputError(f"'{where}' must be one of {list(allowed)}, got {value!r:.80}",
                             where.split("[", 1)[0].split(".", 1)[0])
    return check


# -- messages ---------------------------------------------------------------------------
def _image_url(value: Any, where: str) -> None:
    if isinstance(value, dict):
        fields(value, where, {"url": string, "detail": string})
        if not isinstance(value.get("url"), str):
            raise _fail(f"{where}.url", "a string", value.get("url"))
    elif not isinstance(value, str):
        raise _fail(where, "a string or an object with a url", value)


PART = {"type": string, "text": string, "image_url": _image_url, "cache_control": obj,
        "input_audio": obj, "file": obj, "refusal": string}


def part(value: Any, where: str) -> None:
    fields(value, where, PART)
    if not isinstance(value.get("type"), str):
        raise _fail(f"{where}.type", "a string", value.get("type"))
    if value["type"] == "text" and not isinstance(value.get("text"), str):
        raise _fail(f"{where}.text", "a string", value.get("text"))


def content(value: Any, where: str) -> None:
    if not isinstance(value, str):
        list_of(part)(value, where)


FUNCTION_CALL = {"name": string, "arguments": lambda v, w: None if isinstance(v, str | dict)
                 else _raise(_fail(w, "a JSON string", v))}


def _raise(error: InputError) -> None:
    raise error


def tool_call(value: Any, where: str) -> None:
    fields(value, where, {"id": string, "type": string, "function": nested(FUNCTION_CALL)})
    function = value.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _fail(f"{where}.function.name", "a string", (function or {}).get("name")
                    if isinstance(function, dict) else function)


THINKING_BLOCK = {"type": string, "thinking": string, "signature": string, "data": string}
MESSAGE: dict[str, Check] = {
    "content": content, "name": string, "tool_calls": list_of(tool_call),
    "tool_call_id": string, "thinking_blocks": list_of(nested(THINKING_BLOCK)),
    "reasoning_content": string, "refusal": string, "function_call": nested(FUNCTION_CALL),
    "audio": obj}


def message(value: Any, where: str) -> None:
    fields(value, where, MESSAGE)


# -- tools, formats and the body --------------------------------------------------------
FUNCTION = {"name": string, "description": string, "parameters": obj, "strict": boolean}


def tool(value: Any, where: str) -> None:
    fields(value, where, {"type": string, "function": nested(FUNCTION), "cache_control": obj})
    if value.get("type") in (None, "function"):
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise _fail(f"{where}.function.name", "a non-empty string", name)


def tool_choice(value: Any, where: str) -> None:
    if isinstance(value, str):
        one_of("none", "auto", "required")(value, where)
        return
    fields(value, where, {"type": string, "function": nested({"name": string})})
    function = value.get("function")
    if value.get("type") == "function" and not (
            isinstance(function, dict) and isinstance(function.get("name"), str)):
        raise _fail(f"{where}.function.name", "a string", function)


JSON_SCHEMA = {"name": string, "description": string, "schema": obj, "strict": boolean}


def response_format(value: Any, where: str) -> None:
    fields(value, where, {"type": one_of("text", "json_object", "json_schema"),
                          "json_schema": nested(JSON_SCHEMA)})
    if value.get("type") is None:
        raise _fail(f"{where}.type", "a string", None)


BODY: dict[str, Check] = {
    "stream": boolean, "stream_options": nested({"include_usage": boolean}),
    "tools": list_of(tool), "tool_choice": tool_choice, "parallel_tool_calls": boolean,
    "response_format": response_format, "stop": stop,
    "temperature": ranged(0, 2), "top_p": ranged(0, 1),
    "presence_penalty": ranged(-2, 2), "frequency_penalty": ranged(-2, 2),
    "n": positive, "seed": integer, "logprobs": boolean, "top_logprobs": integer,
    "logit_bias": obj, "user": string, "metadata": obj, "store": boolean,
    "reasoning_effort": string, "verbosity": string, "service_tier": string,
    "modalities": strings, "prediction": obj, "audio": obj, "web_search_options": obj,
    "thinking": obj, "top_k": positive, "_pointsman": obj,
}


def check_fields(body: Mapping[str, Any]) -> None:
    """Every known top-level field of the IR ``body`` (``messages``' items included) has
    its type; raises :class:`InputError` naming the first that does not."""
    for name, value in body.items():
        check = BODY.get(name)
        if check is not None and value is not None:
            check(value, name)
    for i, item in enumerate(body.get("messages") or ()):
        message(item, f"messages[{i}]")


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """``data`` nests objects and lists at most ``limit`` deep (containers only are visited,
    so long strings cost nothing; the recursion is bounded by ``limit``)."""
    if limit < 1:
        raise InputError(f"the body nests objects or lists more than {MAX_DEPTH} deep")
    for value in data.values() if type(data) is dict else data:
        if type(value) is dict or type(value) is list:
            check_depth(value, limit - 1)
