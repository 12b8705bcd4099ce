"""An Anthropic Messages request as the IR (a Chat Completions body with the extensions of
:mod:`pointsman.doors.base`), validated strictly: every problem is an
:class:`~pointsman.errors.InputError` naming the field, whatever the caller sent.

    system (string or text blocks)     system messages, one per block (cache_control kept)
    user text / image / document       user content parts (text documents become text)
    user tool_result                   a ``tool`` message each, before the turn's other parts
    assistant text / tool_use          ``content`` / ``tool_calls`` (arguments as JSON text)
    assistant thinking                 message ``thinking_blocks``
    tools: custom / server             function tools / kept as they are (type not function)
    tool_choice auto/any/tool/none     auto / required / function / none;
                                       disable_parallel_tool_use → parallel_tool_calls false
    stop_sequences, metadata.user_id   stop, user
    thinking, top_k                    the body extensions of the same names

Fields Anthropic defines that have no IR meaning (service_tier, container, mcp_servers,
context_management ...) are ignored, as are unknown ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pointsman.doors.base import PRIVATE
from pointsman.errors import InputError

log = logging.getLogger("pointsman.doors")
Part = dict[str, Any]
SERVER_BLOCKS = frozenset({"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                           "code_execution_tool_result", "bash_code_execution_tool_result",
                           "text_editor_code_execution_tool_result", "mcp_tool_use",
                           "mcp_tool_result", "container_upload", "tool_search_tool_result"})
THINKING_TYPES = frozenset({"enabled", "disabled", "adaptive"})
CHOICES = {"auto": "auto", "any": "required", "none": "none"}
MAX_DEPTH = 64  # JSON nesting the door passes on (orjson writes at most 254 levels)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: Any) -> str:
    """A caller's value for a message: scalars shortened, anything else by its type (the
    repr of a deeply nested value would itself fail)."""
    if isinstance(value, str | int | float) or value is None:
        return f"{value!r:.40}"
    return _kind(value)


def _string(value: Any, where: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        need = "a string" if empty else "a non-empty string"
        raise InputError(f"{where} must be {need}, got {_kind(value)}", where)
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"{where} must be an object, got {_kind(value)}", where)
    return value


def _list(value: Any, where: str, *, empty: bool = True) -> list[Any]:
    if not isinstance(value, list) or (not empty and not value):
        need = "a list" if empty else "a non-empty list"
        raise InputError(f"{where} must be {need}, got {_kind(value)}", where)
    return value


def _int(value: Any, where: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputError(f"{where} must be an integer of at least {low}, got {_shown(value)}",
                         where)
    return value


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"{where} must be a number, got {_kind(value)}", where)
    return float(value)


def free_form(value: Any, where: str) -> Any:
    """``value`` (a schema, a tool's input, a server tool ...: JSON the door passes on
    without reading), checked to nest no deeper than :data:`MAX_DEPTH`, so that writing
    it upstream cannot fail."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{where} is nested deeper than {MAX_DEPTH} levels", where)
        children = item.values() if isinstance(item, Mapping) else item \
            if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, Mapping | list))
    return value


def dumps(value: Any, where: str) -> str:
    """``value`` as JSON text; a value JSON cannot write (too deep, not JSON) is the
    caller's error."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        raise InputError(f"{where} cannot be written as JSON (too deeply nested?)",
                         where) from None


def _block(value: Any, where: str) -> tuple[Mapping[str, Any], str]:
    block = _object(value, where)
    return block, _string(block.get("type"), f"{where}.type", empty=False)


class RequestReader:
    """Reads one request; ``ext`` says whether the IR uses the extensions."""

    def __init__(self) -> None:
        self.ext = False

    def cache(self, block: Mapping[str, Any], out: Part, where: str) -> Part:
        """Copy ``block``'s cache_control (an object with a type) onto ``out``."""
        control = block.get("cache_control")
        if control is not None:
            _string(_object(control, f"{where}.cache_control").get("type"),
                    f"{where}.cache_control.type", empty=False)
            out["cache_control"] = dict(free_form(control, f"{where}.cache_control"))
            self.ext = True
        return out

    # -- content parts ---------------------------------------------------------------------
    def text_part(self, block: Mapping[str, Any], where: str) -> Part:
        return self.cache(block, {"type": "text",
                                  "text": _string(block.get("text"), f"{where}.text")}, where)

    def image_part(self, block: Mapping[str, Any], where: str) -> Part:
        source = _object(block.get("source"), f"{where}.source")
        kind = _string(source.get("type"), f"{where}.source.type")
        if kind == "base64":
            media = _string(source.get("media_type"), f"{where}.source.media_type", empty=False)
            data = _string(source.get("data"), f"{where}.source.data")
            url = f"data:{media};base64,{data}"
        elif kind == "url":
            url = _string(source.get("url"), f"{where}.source.url", empty=False)
        else:
            raise InputError(f"{where}.source.type {kind!r:.40} is not supported (base64 or url)",
                             f"{where}.source.type")
        return self.cache(block, {"type": "image_url", "image_url": {"url": url}}, where)

    def document_part(self, block: Mapping[str, Any], where: str) -> Part:
        """A text document as text; other documents (PDF, files) cannot cross the IR."""
        source = _object(block.get("source"), f"{where}.source")
        kind = _string(source.get("type"), f"{where}.source.type")
        if kind == "text":
            text = _string(source.get("data"), f"{where}.source.data")
        elif kind == "content":
            content = source.get("content")
            if isinstance(content, str):
                text = content
            else:
                parts = [self.text_part(_block(b, f"{where}.source.content[{i}]")[0],
                                        f"{where}.source.content[{i}]")
                         for i, b in enumerate(_list(content, f"{where}.source.content"))]
                text = "\n".join(p["text"] for p in parts)
        else:
            raise InputError(f"{where}.source.type {kind!r:.40}: only text documents pass "
                             "through this gateway (send the text)", f"{where}.source.type")
        title = block.get("title")
        if title is not None:
            text = f"{_string(title, f'{where}.title')}\n\n{text}"
        return self.cache(block, {"type": "text", "text": text}, where)

    def user_part(self, value: Any, where: str) -> Part:
        block, kind = _block(value, where)
        if kind == "text":
            return self.text_part(block, where)
        if kind == "image":
            return self.image_part(block, where)
        if kind == "document":
            return self.document_part(block, where)
        raise InputError(f"{where}.type {kind!r:.40} is not supported in a user turn",
                         f"{where}.type")

    # -- turns -----------------------------------------------------------------------------
    def tool_message(self, block: Mapping[str, Any], where: str) -> Part:
        """A tool_result block as a ``tool`` message (is_error as an ``Error:`` prefix)."""
        tool_id = _string(block.get("tool_use_id"), f"{where}.tool_use_id", empty=False)
        raw = block.get("content")
        content: str | list[Part]
        if raw is None or isinstance(raw, str):
            content = raw or ""
        else:
            content = [self.tool_result_part(b, f"{where}.content[{i}]")
                       for i, b in enumerate(_list(raw, f"{where}.content"))]
        error = block.get("is_error")
        if error is not None and not isinstance(error, bool):
            raise InputError(f"{where}.is_error must be a boolean", f"{where}.is_error")
        if error:
            content = (f"Error: {content}" if isinstance(content, str)
                       else [{"type": "text", "text": "Error:"}, *content])
        if block.get("cache_control") is not None:
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not parts:
                parts = [{"type": "text", "text": ""}]
            self.cache(block, parts[-1], where)
            content = parts
        return {"role": "tool", "tool_call_id": tool_id, "content": content}

    def tool_result_part(self, value: Any, where: str) -> Part:
        block, kind = _block(value, where)
        if kind == "text":
            return self.text_part(block, where)
        if kind == "image":
            return self.image_part(block, where)
        raise InputError(f"{where}.type {kind!r:.40} is not supported in a tool_result",
                         f"{where}.type")

    def user_turn(self, content: Any, where: str) -> list[Part]:
        if isinstance(content, str):
            return [{"role": "user", "content": content}]
        tools: list[Part] = []
        parts: list[Part] = []
        for i, value in enumerate(_list(content, f"{where}.content", empty=False)):
            at = f"{where}.content[{i}]"
            block, kind = _block(value, at)
            if kind == "tool_result":
                tools.append(self.tool_message(block, at))
            else:
                parts.append(self.user_part(block, at))
        return tools + ([{"role": "user", "content": parts}] if parts or not tools else [])

    def thinking_block(self, block: Mapping[str, Any], kind: str, where: str) -> Part:
        self.ext = True
        if kind == "redacted_thinking":
            return {"type": kind, "data": _string(block.get("data"), f"{where}.data")}
        return {"type": kind, "thinking": _string(block.get("thinking"), f"{where}.thinking"),
                "signature": _string(block.get("signature", ""), f"{where}.signature")}

    def tool_call(self, block: Mapping[str, Any], where: str) -> Part:
        arguments = free_form(_object(block.get("input"), f"{where}.input"), f"{where}.input")
        return {"id": _string(block.get("id"), f"{where}.id", empty=False), "type": "function",
                "function": {"name": _string(block.get("name"), f"{where}.name", empty=False),
                             "arguments": dumps(arguments, f"{where}.input")}}

    def assistant_turn(self, content: Any, where: str) -> Part:
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        texts: list[Part] = []
        calls: list[Part] = []
        thinking: list[Part] = []
        for i, value in enumerate(_list(content, f"{where}.content")):
            at = f"{where}.content[{i}]"
            block, kind = _block(value, at)
            if kind == "text":
                texts.append(self.text_part(block, at))
            elif kind == "tool_use":
                calls.append(self.tool_call(block, at))
            elif kind in ("thinking", "redacted_thinking"):
                thinking.append(self.thinking_block(block, kind, at))
            elif kind in SERVER_BLOCKS:
                log.info("messages door: %s (%s) dropped: server tool history has no IR form",
                         at, kind)
            else:
                raise InputError(f"{at}.type {kind!r:.40} is not supported in an assistant turn",
                                 f"{at}.type")
        return self.assistant_message(texts, calls, thinking)

    @staticmethod
    def assistant_message(texts: list[Part], calls: list[Part], thinking: list[Part]) -> Part:
        cached = any("cache_control" in t for t in texts)
        joined = "".join(t["text"] for t in texts)
        message: Part = {"role": "assistant", "content": texts if cached else (joined or None)}
        if calls:
            message["tool_calls"] = calls
        if thinking:
            message["thinking_blocks"] = thinking
        return message

    def messages(self, value: Any) -> list[Part]:
        out: list[Part] = []
        for i, raw in enumerate(_list(value, "messages", empty=False)):
            where = f"messages[{i}]"
            message = _object(raw, where)
            role = message.get("role")
            if role == "user":
                out.extend(self.user_turn(message.get("content"), where))
            elif role == "assistant":
                out.append(self.assistant_turn(message.get("content"), where))
            elif role == "system":  # Claude Code sends these mid-conversation
                out.extend(self.system(message.get("content"), f"{where}.content"))
            else:
                raise InputError(f"{where}.role must be 'user', 'assistant' or 'system', got "
                                 f"{_shown(role)}", f"{where}.role")
        return out

    def system(self, value: Any, name: str = "system") -> list[Part]:
        """One system message per block, so each block's cache_control stays its own
        (``name``: where the blocks are, for errors)."""
        if value is None:
            return []
        if isinstance(value, str):
            return [{"role": "system", "content": value}] if value else []
        out: list[Part] = []
        for i, raw in enumerate(_list(value, name)):
            block, kind = _block(raw, f"{name}[{i}]")
            if kind != "text":
                raise InputError(f"{name}[{i}].type must be 'text', got {kind!r:.40}",
                                 f"{name}[{i}].type")
            part = self.text_part(block, f"{name}[{i}]")
            out.append({"role": "system",
                        "content": [part] if "cache_control" in part else part["text"]})
        return out

    # -- tools -----------------------------------------------------------------------------
    def tool(self, value: Any, where: str) -> Part:
        tool = _object(value, where)
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            _string(kind, f"{where}.type", empty=False)
            self.ext = True
            return dict(free_form(tool, where))  # a server tool, for an Anthropic upstream to run
        function: Part = {"name": _string(tool.get("name"), f"{where}.name", empty=False),
                          "parameters": dict(free_form(_object(
                              tool.get("input_schema"), f"{where}.input_schema"),
                              f"{where}.input_schema"))}
        if tool.get("description") is not None:
            function["description"] = _string(tool["description"], f"{where}.description")
        return self.cache(tool, {"type": "function", "function": function}, where)

    @staticmethod
    def tool_choice(value: Any, out: Part) -> None:
        choice = _object(value, "tool_choice")
        kind = _string(choice.get("type"), "tool_choice.type")
        if kind == "tool":
            name = _string(choice.get("name"), "tool_choice.name", empty=False)
            out["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif kind in CHOICES:
            out["tool_choice"] = CHOICES[kind]
        else:
            raise InputError(f"tool_choice.type must be auto, any, tool or none, got {kind!r:.40}",
                             "tool_choice.type")
        parallel = choice.get("disable_parallel_tool_use")
        if parallel is not None and not isinstance(parallel, bool):
            raise InputError("tool_choice.disable_parallel_tool_use must be a boolean",
                             "tool_choice.disable_parallel_tool_use")
        if parallel:
            out["parallel_tool_calls"] = False

    # -- options ---------------------------------------------------------------------------
    def thinking(self, value: Any) -> Part:
        config = _object(value, "thinking")
        kind = _string(config.get("type"), "thinking.type")
        if kind not in THINKING_TYPES:
            raise InputError(f"thinking.type must be enabled, disabled or adaptive, got "
                             f"{kind!r:.40}", "thinking.type")
        if kind == "enabled":
            _int(config.get("budget_tokens"), "thinking.budget_tokens", 1)
        self.ext = True
        return dict(free_form(config, "thinking"))

    def options(self, body: Mapping[str, Any], out: Part) -> None:
        stops = body.get("stop_sequences")
        if stops is not None:
            out["stop"] = [_string(s, f"stop_sequences[{i}]")
                           for i, s in enumerate(_list(stops, "stop_sequences"))] or None
            if out["stop"] is None:
                del out["stop"]
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = _number(body[name], name)
        if body.get("top_k") is not None:
            out["top_k"] = _int(body["top_k"], "top_k", 0)
            self.ext = True
        if body.get("metadata") is not None:
            user = _object(body["metadata"], "metadata").get("user_id")
            if user is not None:
                out["user"] = _string(user, "metadata.user_id")
        if body.get("stream") is not None:
            if not isinstance(body["stream"], bool):
                raise InputError(f"stream must be a boolean, got {_kind(body['stream'])}",
                                 "stream")
            out["stream"] = body["stream"]
            if body["stream"]:  # the door's message_delta needs the upstream's usage
                out["stream_options"] = {"include_usage": True}
        if body.get("thinking") is not None:
            out["thinking"] = self.thinking(body["thinking"])

    def tools(self, body: Mapping[str, Any], out: Part) -> None:
        if body.get("tools") is not None:
            tools = [self.tool(t, f"tools[{i}]") for i, t in enumerate(_list(body["tools"],
                                                                              "tools"))]
            if tools:
                out["tools"] = tools
        if body.get("tool_choice") is not None:
            self.tool_choice(body["tool_choice"], out)


def read_request(body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    """An Anthropic Messages request body as the IR (see the module docstring)."""
    request = _object(body, "the body")
    reader = RequestReader()
    out: dict[str, Any] = {
        "model": _string(request.get("model"), "model", empty=False),
        "max_tokens": _int(request.get("max_tokens"), "max_tokens", 1),
        "messages": reader.system(request.get("system"))
        + reader.messages(request.get("messages"))}
    reader.options(request, out)
    reader.tools(request, out)
    private: dict[str, Any] = {"door": "messages"}
    if reader.ext:
        private["ext"] = True
    for header in ("anthropic-beta", "anthropic-version"):
        if headers.get(header):
            private[header.replace("-", "_")] = headers[header]
    out[PRIVATE] = private
    return out
