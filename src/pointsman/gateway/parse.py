"""A Chat Completions request: read the body (size-capped), validate its shape, and build the
:class:`~pointsman.types.RouteRequest` the router reads. Every problem is an
:class:`~pointsman.errors.InputError` naming the field, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from pointsman import jsonio
from pointsman.errors import (
    InputError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)
from pointsman.gateway.validate import check_depth, check_fields
from pointsman.types import Message, RouteRequest

ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
HEADER_METADATA = {
    "x-pointsman-session": "session",
    "x-pointsman-task-type": "task_type",
    "x-pointsman-use-case": "use_case",
}
OWNER_HEADERS = {"x-pointsman-user": "user", "x-pointsman-team": "team",
                 "x-pointsman-plan": "plan"}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    route: RouteRequest


async def read_json(request: Request, max_bytes: int,
                    timeout_s: float | None = None) -> dict[str, Any]:
    """The body as a JSON object: at most ``max_bytes`` (413), all of it within
    ``timeout_s`` (408: a client that stalls its upload does not hold the server),
    nested at most :data:`~pointsman.gateway.validate.MAX_DEPTH` deep (400)."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {ctype or 'none'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body of {declared} bytes exceeds the limit of "
                                   f"{max_bytes} bytes")
    if timeout_s is None or _arrived(request):
        raw = await _body(request, max_bytes)  # nothing to wait for: no timer
    else:
        try:
            async with asyncio.timeout(timeout_s):
                raw = await _body(request, max_bytes)
        except TimeoutError:
            raise RequestTimeoutError(f"the request body was not received within "
                                      f"{timeout_s:g} s") from None
    try:
        data = jsonio.loads(raw)
    except ValueError as exc:
        raise InputError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"the body must be a JSON object, got {type(data).__name__}")
    check_depth(data)
    return data


def _arrived(request: Request) -> bool:
    """Whether the server has the whole body already (uvicorn's request cycle says so: the
    usual case for a small body, sent with its head), so reading it cannot stall."""
    cycle = getattr(request.receive, "__self__", None)
    return getattr(cycle, "more_body", True) is False


async def _body(request: Request, max_bytes: int) -> bytearray:
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds the limit of {max_bytes} bytes")
    return raw


def _content_text(content: Any, where: str) -> tuple[str, bool]:
    """(text, has_image) of a message's content: a string, null or a list of parts."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise InputError(f"{where}.content must be a string or a list of parts", where)
    texts: list[str] = []
    image = False
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InputError(f"{where}.content[{j}] must be an object with a 'type'", where)
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise InputError(f"{where}.content[{j}].text must be a string", where)
            texts.append(part["text"])
        elif part["type"] in ("image_url", "image", "input_image"):
            image = True
    return "\n".join(texts), image


def _messages(body: Mapping[str, Any]) -> tuple[tuple[Message, ...], bool]:
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise InputError("'messages' is required and must be a list", "messages")
    if not raw:
        raise InputError("'messages' must contain at least one message", "messages")
    out: list[Message] = []
    vision = False
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be an object", "messages")
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InputError(f"{where}.role must be one of {sorted(ROLES)}, got {role!r}",
                             "messages")
        text, image = _content_text(item.get("content"), where)
        vision |= image
        out.append(Message(role, text))
    return tuple(out), vision


def _optional(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
              what: str) -> Any:
    value = body.get(name)
    wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    if value is not None and wrong:
        raise InputError(f"'{name}' must be {what}, got {type(value).__name__}", name)
    return value


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _optional(body, name, int, "a positive integer")
        if value is not None:
            if value < 1:
                raise InputError(f"'{name}' must be a positive integer", name)
            return int(value)
    return None


def _flags(body: Mapping[str, Any]) -> tuple[bool, bool, int, bool]:
    stream = bool(_optional(body, "stream", bool, "a boolean"))
    options = _optional(body, "stream_options", dict, "an object") or {}
    include_usage = bool(options.get("include_usage")) and stream
    tools = _optional(body, "tools", list, "a list") or []
    fmt = _optional(body, "response_format", dict, "an object")
    needs_json = bool(fmt) and fmt.get("type") in ("json_object", "json_schema")
    for name in ("temperature", "top_p"):
        _optional(body, name, (int, float), "a number")
    return stream, include_usage, len(tools), needs_json


AGENT_HEADERS = frozenset({b"x-claude-code-session-id", b"session-id", b"user-agent"})


def _pointsman_headers(request: Request) -> dict[str, str]:
    """The ``x-pointsman-*`` request headers and the agents' session and client headers
    (the first of repeated ones), read in one pass (each lookup in Starlette's ``Headers``
    scans and decodes every header)."""
    out: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        if name.startswith(b"x-pointsman-") or name in AGENT_HEADERS:
            out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _session(headers: Mapping[str, str], body: Mapping[str, Any], door: str) -> str | None:
    """The conversation a request belongs to, for session affinity: pointsman's header,
    Claude Code's session header, Codex's ``session-id`` header or ``prompt_cache_key``,
    the Messages door's ``metadata.user_id``, a Responses ``previous_response_id``."""
    found = (headers.get("x-pointsman-session") or headers.get("x-claude-code-session-id")
             or headers.get("session-id"))
    if found:
        return found
    key = body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    private = body.get("_pointsman")
    if isinstance(private, Mapping) and isinstance(private.get("session"), str):
        return str(private["session"])
    user = body.get("user")
    return user if door == "messages" and isinstance(user, str) and user else None


def _agent_facts(body: Mapping[str, Any], headers: Mapping[str, str],
                 meta: dict[str, Any]) -> None:
    """What scenario rules match on (:mod:`pointsman.rules`): the model asked for, the
    client, thinking or a reasoning effort, the tools' names."""
    meta["requested_model"] = body.get("model")
    client = headers.get("user-agent")
    if client:
        meta["client"] = client
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        meta["reasoning_effort"] = effort
    thinking = body.get("thinking")
    if effort is not None or (isinstance(thinking, Mapping)
                              and thinking.get("type") not in (None, "disabled")):
        meta["thinking"] = True
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        meta["tool_names"] = tuple(_tool_name(t) for t in tools)


def _tool_name(tool: Any) -> str:
    if not isinstance(tool, Mapping):
        return ""
    function = tool.get("function")
    if isinstance(function, Mapping):
        return str(function.get("name") or "")
    return str(tool.get("name") or tool.get("type") or "")


def _metadata(request: Request, owner: Mapping[str, Any], body: Mapping[str, Any],
              trust_headers: bool, door: str = "chat") -> dict[str, Any]:
    """Request metadata. The caller's user, team and plan headers are taken only from
    trusted callers (an admin key, or an open loopback gateway); a key's owner always wins."""
    headers = _pointsman_headers(request)
    meta: dict[str, Any] = {"door": door}
    for header, field in OWNER_HEADERS.items():
        if trust_headers and header in headers:
            meta[field] = headers[header]
    if trust_headers and isinstance(body.get("user"), str) and "user" not in meta:
        meta["user"] = body["user"]
    meta.update((k, v) for k, v in owner.items() if v is not None)  # the key's owner wins
    for header, field in HEADER_METADATA.items():
        if header in headers:
            meta[field] = headers[header]
    session = _session(headers, body, door)
    if session is not None:
        meta["session"] = session
    _agent_facts(body, headers, meta)
    target = headers.get("x-pointsman-latency-target-ms")
    if target is not None:
        try:
            meta["latency_target_ms"] = float(target)
        except ValueError:
            raise InputError("x-pointsman-latency-target-ms must be a number") from None
    realtime = headers.get("x-pointsman-realtime")
    if realtime is not None:
        meta["realtime"] = realtime.strip().lower() not in ("0", "false", "no")
    return meta


def parse_chat(request: Request, body: dict[str, Any], owner: Mapping[str, Any],
               trust_headers: bool = True, door: str = "chat") -> ChatRequest:
    """The IR body (a Chat Completions body, as every door makes it) validated, with the
    :class:`RouteRequest` the router reads; ``door`` goes into its metadata (rules can
    match it)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("'model' is required and must be a string (use \"auto\" to route)",
                         "model")
    messages, vision = _messages(body)
    check_fields(body)
    stream, include_usage, tools, needs_json = _flags(body)
    route = RouteRequest(messages=messages, tools_count=tools, needs_json=needs_json,
                         needs_vision=vision, stream=stream, max_output_tokens=_max_tokens(body),
                         metadata=_metadata(request, owner, body, trust_headers, door))
    return ChatRequest(body, model, stream, include_usage, route)
