"""A Responses API request (``POST /v1/responses``) as the IR, a Chat Completions body.

    input (a string)                 one user message
    input message items              messages of the same role; ``input_text`` /
                                     ``output_text`` parts → text, ``input_image`` → an
                                     ``image_url`` part, ``input_file`` with ``file_data`` →
                                     a ``file`` part, ``refusal`` → the assistant ``refusal``
    ``function_call`` items          assistant ``tool_calls``; consecutive calls, and the
                                     assistant text just before them, make one message
    ``function_call_output`` items   ``tool`` messages (images in the output are dropped:
                                     a Chat tool message carries text only)
    ``reasoning`` items              dropped: their encrypted content means nothing to
                                     another upstream
    instructions                     a leading system message
    tools                            function tools; every other kind (web_search,
                                     local_shell, custom, mcp ...) needs OpenAI's servers:
                                     dropped, so that clients that always send them (Codex)
                                     still work
    ``additional_tools`` items       more tools (Codex's default model declares its tools
                                     so, grouped in namespaces): the function tools of the
                                     default ``functions`` namespace join ``tools``; other
                                     namespaces (their calls name them) are dropped
    tool_choice, text.format, reasoning.effort, max_output_tokens
                                     tool_choice, response_format, reasoning_effort,
                                     max_completion_tokens

What is dropped is listed in ``_pointsman.dropped`` (for the request log). Fields that
shape only the stored or echoed response (store, previous_response_id, include, metadata,
truncation, service_tier, safety_identifier, text.verbosity) are checked, never sent.
Every malformed field is an :class:`~pointsman.errors.InputError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointsman.doors.base import PRIVATE
from pointsman.errors import InputError

ROLES = frozenset({"user", "assistant", "system", "developer"})
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
SUMMARIES = frozenset({"auto", "concise", "detailed"})
VERBOSITY = frozenset({"low", "medium", "high"})
TEXT_PARTS = frozenset({"input_text", "output_text"})
MAX_DEPTH = 64  # JSON schemas nest far less; deeper would break the upstream's encoder
Json = dict[str, Any]


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str,
           where: str | None = None) -> Any:
    """``body[name]`` when it is of ``kind`` (booleans are not numbers), None when absent or
    null; anything else is an InputError naming ``where.name``."""
    value = body.get(name)
    path = f"{where}.{name}" if where else name
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise InputError(f"'{path}' must be {what}, got {_type_name(value)}", path)
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _schema(body: Mapping[str, Any], name: str, where: str) -> Json | None:
    """A free-form JSON object (a tool's parameters, a response schema)."""
    value = _field(body, name, dict, "an object", where)
    if value is not None and _too_deep(value):
        raise InputError(f"'{where}.{name}' nests deeper than {MAX_DEPTH} levels",
                         f"{where}.{name}")
    return value if isinstance(value, dict) else None


def _required_str(item: Mapping[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise InputError(f"'{where}.{name}' must be a string, got {_type_name(value)}",
                         f"{where}.{name}")
    return value


def _choice(body: Mapping[str, Any], name: str, allowed: frozenset[str],
            where: str | None = None) -> str | None:
    value = _field(body, name, str, "a string", where)
    path = f"{where}.{name}" if where else name
    if value is not None and value not in allowed:
        raise InputError(f"'{path}' must be one of {sorted(allowed)}, got {value!r}", path)
    return value if isinstance(value, str) else None


# -- message content ----------------------------------------------------------------


def _image(part: Mapping[str, Any], where: str) -> Json:
    if part.get("file_id") is not None:
        raise InputError(f"'{where}.file_id': file ids are not supported, send image_url",
                         f"{where}.file_id")
    url = _required_str(part, "image_url", where)
    image: Json = {"url": url}
    detail = _choice(part, "detail", frozenset({"auto", "low", "high", "original"}), where)
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file(part: Mapping[str, Any], where: str) -> Json:
    data = part.get("file_data")
    if not isinstance(data, str):
        raise InputError(f"'{where}': only files sent inline as file_data are supported "
                         "(not file_id or file_url)", f"{where}.file_data")
    file: Json = {"file_data": data}
    name = _field(part, "filename", str, "a string", where)
    if name is not None:
        file["filename"] = name
    return {"type": "file", "file": file}


def _part(part: Any, where: str, assistant: bool) -> Json:
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        raise InputError(f"'{where}' must be an object with a string 'type'", where)
    kind = part["type"]
    if kind in TEXT_PARTS:
        return {"type": "text", "text": _required_str(part, "text", where)}
    if kind == "refusal" and assistant:
        return {"type": "refusal", "refusal": _required_str(part, "refusal", where)}
    if kind == "input_image" and not assistant:
        return _image(part, where)
    if kind == "input_file" and not assistant:
        return _file(part, where)
    role = "an assistant" if assistant else "this"
    raise InputError(f"'{where}.type' {kind!r} is not supported in {role} message",
                     f"{where}.type")


def _message(item: Mapping[str, Any], where: str) -> Json:
    role = _choice(item, "role", ROLES, where)
    if role is None:
        raise InputError(f"'{where}.role' is required", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InputError(f"'{where}.content' must be a string or a list of parts, got "
                         f"{_type_name(content)}", f"{where}.content")
    parts = [_part(p, f"{where}.content[{j}]", role == "assistant")
             for j, p in enumerate(content)]
    if role != "assistant":
        return {"role": role, "content": parts}
    message: Json = {"role": "assistant",
                     "content": "".join(p["text"] for p in parts if p["type"] == "text")}
    refusal = "".join(p["refusal"] for p in parts if p["type"] == "refusal")
    if refusal:
        message["refusal"] = refusal
    return message


# -- tool calls and their outputs ----------------------------------------------------


def _call(item: Mapping[str, Any], where: str) -> Json:
    return {"id": _required_str(item, "call_id", where), "type": "function",
            "function": {"name": _required_str(item, "name", where),
                         "arguments": _required_str(item, "arguments", where)}}


def _add_call(messages: list[Json], call: Json) -> None:
    """Attach a call to the assistant message just before it (its text, or earlier calls),
    or start an assistant message: Chat carries a turn's calls in one message."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_output(item: Mapping[str, Any], where: str, dropped: list[str]) -> Json:
    call_id = _required_str(item, "call_id", where)
    output = item.get("output")
    if isinstance(output, str):
        return {"role": "tool", "tool_call_id": call_id, "content": output}
    if not isinstance(output, list):
        raise InputError(f"'{where}.output' must be a string or a list of parts, got "
                         f"{_type_name(output)}", f"{where}.output")
    parts: list[Json] = []
    for j, part in enumerate(output):
        at = f"{where}.output[{j}]"
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InputError(f"'{at}' must be an object with a string 'type'", at)
        if part["type"] in TEXT_PARTS:
            parts.append({"type": "text", "text": _required_str(part, "text", at)})
        elif part["type"] in ("input_image", "input_file"):
            dropped.append(f"{at}: {part['type']} (a tool message carries text only)")
        else:
            raise InputError(f"'{at}.type' {part['type']!r} is not supported", f"{at}.type")
    return {"role": "tool", "tool_call_id": call_id, "content": parts}


def _items(items: list[Any], dropped: list[str]) -> list[Json]:
    messages: list[Json] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(f"'{where}' must be an object, got {_type_name(item)}", where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _add_call(messages, _call(item, where))
        elif kind == "function_call_output":
            messages.append(_tool_output(item, where, dropped))
        elif kind == "reasoning":
            dropped.append(f"{where}: reasoning")
        elif kind == "additional_tools":
            continue  # tool declarations: read by tools_of
        elif kind == "item_reference":
            raise InputError(f"'{where}': item_reference is not supported; send the item "
                             "itself", f"{where}.type")
        else:
            shown = kind if isinstance(kind, str) else _type_name(kind)
            raise InputError(f"'{where}.type' {shown!r} is not a supported input item",
                             f"{where}.type")
    return messages


def input_messages(body: Mapping[str, Any], dropped: list[str]) -> list[Json]:
    """``instructions`` and ``input`` as Chat messages."""
    messages: list[Json] = []
    instructions = _field(body, "instructions", str, "a string")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        return [*messages, {"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise InputError(f"'input' must be a string or a list of items, got "
                         f"{_type_name(raw)}", "input")
    items = _items(raw, dropped)
    if not items:
        raise InputError("'input' must contain at least one message or call item", "input")
    return messages + items


# -- tools -------------------------------------------------------------------------


def function_tool(tool: Mapping[str, Any], where: str) -> Json:
    """A Responses function tool as a Chat one."""
    function: Json = {"name": _required_str(tool, "name", where)}
    description = _field(tool, "description", str, "a string", where)
    parameters = _schema(tool, "parameters", where)
    strict = _field(tool, "strict", bool, "a boolean", where)
    for name, value in (("description", description), ("parameters", parameters),
                        ("strict", strict)):
        if value is not None:
            function[name] = value
    return {"type": "function", "function": function}


def _declared(body: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every tool the request declares, with where: ``tools``, then the tools of each
    ``additional_tools`` input item."""
    raw = _field(body, "tools", list, "a list")
    found = [(f"tools[{i}]", tool) for i, tool in enumerate(raw or ())]
    items = body.get("input")
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, Mapping) and item.get("type") == "additional_tools":
            extra = _field(item, "tools", list, "a list", f"input[{i}]")
            found += [(f"input[{i}].tools[{j}]", t) for j, t in enumerate(extra or ())]
    return found


def _tool(tool: Any, where: str, out: list[Json], dropped: list[str]) -> None:
    """One declared tool into ``out`` (function tools; the members of the default
    ``functions`` namespace, whose calls carry the bare name) or ``dropped``."""
    if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
        raise InputError(f"'{where}' must be an object with a string 'type'", where)
    if tool["type"] == "function":
        out.append(function_tool(tool, where))
    elif tool["type"] == "namespace" and tool.get("name") == "functions":
        members = _field(tool, "tools", list, "a list", where)
        for k, member in enumerate(members or ()):
            _tool(member, f"{where}.tools[{k}]", out, dropped)
    else:
        dropped.append(f"{where}: {tool['type']} (a Chat upstream cannot run it)")


def tools_of(body: Mapping[str, Any], dropped: list[str]) -> list[Json]:
    out: list[Json] = []
    for where, tool in _declared(body):
        _tool(tool, where, out, dropped)
    return out


def _tool_choice(body: Mapping[str, Any], tools: list[Json]) -> Any:
    choice = body.get("tool_choice")
    if choice is None or choice in ("auto", "none"):
        return choice
    if choice == "required":
        if not tools:
            raise InputError("'tool_choice' 'required' needs at least one function tool",
                             "tool_choice")
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        name = _required_str(choice, "name", "tool_choice")
        if name not in {t["function"]["name"] for t in tools}:
            raise InputError(f"'tool_choice.name' {name!r} is not a function in 'tools'",
                             "tool_choice.name")
        return {"type": "function", "function": {"name": name}}
    raise InputError("'tool_choice' must be 'auto', 'none', 'required' or {type: "
                     "'function', name}; other choices need OpenAI's built-in tools",
                     "tool_choice")


# -- text, reasoning and the rest ----------------------------------------------------


def _response_format(body: Mapping[str, Any]) -> Json | None:
    text = _field(body, "text", dict, "an object")
    if text is None:
        return None
    _choice(text, "verbosity", VERBOSITY, "text")
    fmt = _field(text, "format", dict, "an object", "text")
    if fmt is None:
        return None
    kind = _choice(fmt, "type", frozenset({"text", "json_object", "json_schema"}),
                   "text.format")
    if kind is None:
        raise InputError("'text.format.type' is required", "text.format.type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    schema: Json = {"name": _required_str(fmt, "name", "text.format")}
    value = _schema(fmt, "schema", "text.format")
    if value is None:
        raise InputError("'text.format.schema' is required", "text.format.schema")
    schema["schema"] = value
    for name, kind_, what in (("strict", bool, "a boolean"), ("description", str, "a string")):
        extra = _field(fmt, name, kind_, what, "text.format")
        if extra is not None:
            schema[name] = extra
    return {"type": "json_schema", "json_schema": schema}


def _effort(body: Mapping[str, Any]) -> str | None:
    reasoning = _field(body, "reasoning", dict, "an object")
    if reasoning is None:
        return None
    _choice(reasoning, "summary", SUMMARIES, "reasoning")
    return _choice(reasoning, "effort", EFFORTS, "reasoning")


def _check_accepted(body: Mapping[str, Any]) -> None:
    """Fields that shape only the stored or echoed response: checked, never sent."""
    for name in ("previous_response_id", "service_tier", "safety_identifier"):
        _field(body, name, str, "a string")
    _field(body, "store", bool, "a boolean")
    _choice(body, "truncation", frozenset({"auto", "disabled"}))
    include = _field(body, "include", list, "a list of strings")
    if include is not None and not all(isinstance(x, str) for x in include):
        raise InputError("'include' must be a list of strings", "include")
    metadata = _field(body, "metadata", dict, "an object of strings")
    if metadata is not None and not all(isinstance(v, str) for v in metadata.values()):
        raise InputError("'metadata' values must be strings", "metadata")
    for name in ("conversation", "prompt"):
        if body.get(name) is not None:
            raise InputError(f"'{name}' is not supported by this gateway", name)
    if body.get("background") not in (None, False):
        raise InputError("'background' responses are not supported by this gateway",
                         "background")


def _sampling(body: Mapping[str, Any], out: Json) -> None:
    for name in ("temperature", "top_p"):
        value = _field(body, name, (int, float), "a number")
        if value is not None:
            out[name] = value
    limit = _field(body, "max_output_tokens", int, "a positive integer")
    if limit is not None:
        if limit < 1:
            raise InputError("'max_output_tokens' must be a positive integer",
                             "max_output_tokens")
        out["max_completion_tokens"] = limit
    for name in ("user", "prompt_cache_key"):
        value = _field(body, name, str, "a string")
        if value is not None:
            out[name] = value


def _tooling(body: Mapping[str, Any], out: Json, dropped: list[str]) -> None:
    tools = tools_of(body, dropped)
    choice = _tool_choice(body, tools)
    parallel = _field(body, "parallel_tool_calls", bool, "a boolean")
    if not tools:
        return
    out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    if parallel is not None:
        out["parallel_tool_calls"] = parallel


def to_chat(body: Mapping[str, Any]) -> Json:
    """A Responses request body as the IR (see the module docstring)."""
    if not isinstance(body, Mapping):
        raise InputError(f"the body must be a JSON object, got {_type_name(body)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("'model' is required and must be a non-empty string", "model")
    dropped: list[str] = []
    out: Json = {"model": model, "messages": input_messages(body, dropped)}
    _tooling(body, out, dropped)
    _sampling(body, out)
    fmt = _response_format(body)
    if fmt is not None:
        out["response_format"] = fmt
    effort = _effort(body)
    if effort is not None:
        out["reasoning_effort"] = effort
    _check_accepted(body)
    if _field(body, "stream", bool, "a boolean"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    out[PRIVATE] = {"door": "responses", "dropped": dropped} if dropped else {
        "door": "responses"}
    return out
