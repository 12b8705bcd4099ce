"""Translation between OpenAI Chat Completions (the IR) and the OpenAI Responses API
(pure functions).

Request (IR → Responses):
    system / developer messages     ``instructions`` (joined with blank lines)
    user / assistant text           ``input`` messages; image_url parts → ``input_image``,
                                    file parts → ``input_file``
    assistant ``tool_calls``        ``function_call`` items (``call_id`` = the call's id)
    ``tool`` messages               ``function_call_output`` items
    tools / tool_choice             flat ``{type: function, name, description, parameters,
                                    strict}`` (strict false unless the IR says so: Chat
                                    Completions' default) / auto, none, required,
                                    ``{type: function, name}``
    response_format / verbosity     ``text.format`` / ``text.verbosity``
    reasoning_effort                ``reasoning.effort`` (+ ``reasoning.summary`` when the
                                    endpoint asks for summaries)
    max_completion_tokens / max_tokens   ``max_output_tokens``
    logprobs / top_logprobs         ``include: [message.output_text.logprobs]`` /
                                    ``top_logprobs``
    temperature, top_p, parallel_tool_calls, user, prompt_cache_key, metadata,
    service_tier, safety_identifier   the same names
    always                          ``store: false`` (pointsman keeps no upstream state)
    anything else (stop, n, seed, penalties, ``_pointsman`` and the IR extensions)
                                    not sent: the Responses API has no equivalent

Response (Responses → IR): ``output_text`` parts → ``content``, refusals → ``refusal``,
``function_call`` items → ``tool_calls``, reasoning summaries (or reasoning text) →
``reasoning_content``; status incomplete → finish_reason length (max_output_tokens) or
content_filter; usage input / output tokens → prompt / completion tokens with
``cached_tokens`` (and ``cache_write_tokens`` as the IR's ``cache_creation_tokens``) and
``reasoning_tokens`` details.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from pointsman.errors import InputError, StreamBrokenError, UpstreamServerError
from pointsman.providers.base import Usage, untranslatable_is_input

Item = dict[str, Any]
LOGPROBS_INCLUDE = "message.output_text.logprobs"
INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
PASSED = ("temperature", "top_p", "parallel_tool_calls", "user", "prompt_cache_key",
          "metadata", "service_tier", "safety_identifier", "top_logprobs")


# -- request ------------------------------------------------------------------------------

def _text(content: Any, where: str) -> str:
    """The text of a string or a list of text parts (system, assistant and tool content)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InputError(f"{where} must be a string or a list of parts", param=where)
    texts = []
    for i, part in enumerate(content):
        text = part.get("text") if isinstance(part, Mapping) else None
        if not isinstance(text, str):
            raise InputError(f"{where}[{i}].text must be a string", param=f"{where}[{i}].text")
        texts.append(text)
    return "".join(texts)


def _image(part: Mapping[str, Any], where: str) -> Item:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise InputError(f"{where}.image_url.url must be a string", param=f"{where}.image_url")
    detail = image.get("detail") if isinstance(image, Mapping) else None
    return {"type": "input_image", "image_url": url, "detail": detail or "auto"}


def _file(part: Mapping[str, Any], where: str) -> Item:
    file = part.get("file")
    if not isinstance(file, Mapping):
        raise InputError(f"{where}.file must be an object", param=f"{where}.file")
    return {"type": "input_file", **{k: file[k] for k in ("file_data", "file_id", "filename")
                                     if file.get(k) is not None}}


def _user_content(content: Any, where: str) -> str | list[Item]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InputError(f"{where} must be a string or a list of parts", param=where)
    parts: list[Item] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        here = f"{where}[{i}]"
        if kind == "text":
            parts.append({"type": "input_text", "text": _text([part], where)})
        elif kind == "image_url":
            parts.append(_image(part, here))
        elif kind == "file":
            parts.append(_file(part, here))
        else:
            raise InputError(f"{here}.type {kind!r} is not supported by the Responses API",
                             param=f"{here}.type")
    return parts


def _function_call(call: Any, where: str) -> Item:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InputError(f"{where}.function.name must be a string", param=f"{where}.function")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        raise InputError(f"{where}.function.arguments must be a JSON string",
                         param=f"{where}.function.arguments")
    return {"type": "function_call", "call_id": str(call.get("id") or ""),
            "name": function["name"], "arguments": arguments}


def _items(message: Mapping[str, Any], where: str) -> list[Item]:
    """One IR message as Responses input items."""
    role = message.get("role")
    if role == "user":
        return [{"role": "user", "content": _user_content(message.get("content"),
                                                          f"{where}.content")}]
    if role == "assistant":
        text = _text(message.get("content"), f"{where}.content")
        items: list[Item] = [{"role": "assistant", "content": text}] if text else []
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise InputError(f"{where}.tool_calls must be a list", param=f"{where}.tool_calls")
        return items + [_function_call(c, f"{where}.tool_calls[{i}]")
                        for i, c in enumerate(calls)]
    if role == "tool":
        return [{"type": "function_call_output", "call_id": str(message.get("tool_call_id")),
                 "output": _text(message.get("content"), f"{where}.content")}]
    raise InputError(f"{where}.role {role!r} is not supported", param=f"{where}.role")


def translate_messages(messages: Any) -> tuple[str, list[Item]]:
    """IR messages → (``instructions``, ``input`` items)."""
    if not isinstance(messages, list) or not messages:
        raise InputError("messages must be a non-empty list", param="messages")
    system: list[str] = []
    items: list[Item] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InputError(f"{where} must be an object", param=where)
        if message.get("role") in ("system", "developer"):
            system.append(_text(message.get("content"), f"{where}.content"))
        else:
            items.extend(_items(message, where))
    return "\n\n".join(s for s in system if s), items


def translate_tools(tools: Any) -> list[Item]:
    if not isinstance(tools, list):
        raise InputError("tools must be a list", param="tools")
    out = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            raise InputError(f"tools[{i}].type must be 'function'", param=f"tools[{i}].type")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InputError(f"tools[{i}].function.name must be a string",
                             param=f"tools[{i}].function.name")
        entry: Item = {"type": "function", "name": function["name"],
                       "parameters": function.get("parameters")
                       or {"type": "object", "properties": {}},
                       "strict": bool(function.get("strict", False))}
        if function.get("description"):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def translate_tool_choice(choice: Any) -> str | Item:
    if choice in ("auto", "none", "required"):
        return str(choice)
    function = choice.get("function") if isinstance(choice, Mapping) else None
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return {"type": "function", "name": function["name"]}
    raise InputError(f"unsupported tool_choice {choice!r}", param="tool_choice")


def translate_format(response_format: Any) -> Item:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    schema = response_format.get("json_schema") if kind == "json_schema" else None
    if not isinstance(schema, Mapping) or not isinstance(schema.get("name"), str):
        raise InputError("response_format must be text, json_object or json_schema with "
                         "json_schema.name", param="response_format")
    out: Item = {"type": "json_schema", "name": schema["name"],
                 "schema": schema.get("schema") or {}}
    for key in ("description", "strict"):
        if schema.get(key) is not None:
            out[key] = schema[key]
    return out


def _options(body: Mapping[str, Any], reasoning_summary: str | None) -> Item:
    """The sampling, format, reasoning and bookkeeping fields."""
    out: Item = {k: body[k] for k in PASSED if body.get(k) is not None}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        out["max_output_tokens"] = int(limit)
    text: Item = {}
    if body.get("response_format") is not None:
        text["format"] = translate_format(body["response_format"])
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
        if reasoning_summary:
            out["reasoning"]["summary"] = reasoning_summary
    if body.get("logprobs"):
        out["include"] = [LOGPROBS_INCLUDE]
    return out


@untranslatable_is_input("OpenAI Responses")
def to_responses(body: Mapping[str, Any], reasoning_summary: str | None = None
                 ) -> dict[str, Any]:
    """An IR (Chat Completions) body as a Responses ``POST /responses`` body.

    ``reasoning_summary`` (auto, concise, detailed) asks for reasoning summaries when the
    body asks for reasoning; None never does (summaries need a verified organization)."""
    instructions, items = translate_messages(body.get("messages"))
    out: dict[str, Any] = {"model": body.get("model"), "input": items, "store": False}
    if instructions:
        out["instructions"] = instructions
    if body.get("tools"):
        out["tools"] = translate_tools(body["tools"])
    if body.get("tool_choice") is not None:
        out["tool_choice"] = translate_tool_choice(body["tool_choice"])
    out.update(_options(body, reasoning_summary))
    if body.get("stream"):
        out["stream"] = True
    return out


# -- answer -------------------------------------------------------------------------------

def usage_of(usage: Any) -> Usage | None:
    """Responses usage (``input_tokens`` includes the cached ones, ``output_tokens`` the
    reasoning) as IR usage, with its details."""
    if not isinstance(usage, Mapping):
        return None
    try:
        return Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0),
                     cached_tokens=_detail(usage, "input_tokens_details", "cached_tokens"),
                     cache_creation_tokens=_detail(usage, "input_tokens_details",
                                                   "cache_write_tokens"),
                     reasoning_tokens=_detail(usage, "output_tokens_details",
                                              "reasoning_tokens"))
    except (TypeError, ValueError):
        return None


def _detail(usage: Mapping[str, Any], key: str, field: str) -> int:
    details = usage.get(key)
    value = details.get(field) if isinstance(details, Mapping) else None
    return max(0, int(value)) if isinstance(value, int | float) else 0


def usage_dict(usage: Any) -> dict[str, Any] | None:
    """Responses usage as IR usage (with the cached and reasoning token details)."""
    counted = usage_of(usage)
    if counted is None:
        return None
    return {"prompt_tokens": counted.prompt_tokens,
            "completion_tokens": counted.completion_tokens,
            "total_tokens": counted.total_tokens,
            "prompt_tokens_details": {
                "cached_tokens": counted.cached_tokens,
                "cache_creation_tokens": counted.cache_creation_tokens},
            "completion_tokens_details": {"reasoning_tokens": counted.reasoning_tokens}}


def _logprob(entry: Mapping[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token", ""))
    return {"token": token, "logprob": entry.get("logprob"),
            "bytes": entry.get("bytes") or list(token.encode())}


def chat_logprobs(entries: Any) -> list[dict[str, Any]]:
    """Responses logprob entries as Chat Completions ``logprobs.content`` entries."""
    return [{**_logprob(e), "top_logprobs": [_logprob(t) for t in e.get("top_logprobs") or ()
                                             if isinstance(t, Mapping)]}
            for e in entries or () if isinstance(e, Mapping)]


def _reasoning(item: Mapping[str, Any]) -> str:
    parts = item.get("summary") or item.get("content") or ()
    return "\n\n".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))


def _read_output(output: Sequence[Any]) -> tuple[dict[str, list[Any]], list[Item]]:
    """({"text", "refusal", "reasoning", "logprobs"}: pieces, tool calls) of ``output``."""
    found: dict[str, list[Any]] = {"text": [], "refusal": [], "reasoning": [], "logprobs": []}
    calls: list[Item] = []
    for item in output:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    found["text"].append(str(part.get("text", "")))
                    found["logprobs"] += chat_logprobs(part.get("logprobs"))
                elif part.get("type") == "refusal":
                    found["refusal"].append(str(part.get("refusal", "")))
        elif kind == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function", "function": {
                "name": item.get("name"), "arguments": item.get("arguments") or ""}})
        elif kind == "reasoning" and _reasoning(item):
            found["reasoning"].append(_reasoning(item))
    return found, calls


def finish_reason(status: Any, details: Any, tool_calls: bool) -> str:
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return INCOMPLETE.get(str(reason), "length")
    return "tool_calls" if tool_calls else "stop"


def to_completion(data: Mapping[str, Any], model: str = "") -> dict[str, Any]:
    """A Responses ``response`` object as an IR ``chat.completion``. A failed response
    raises :class:`~pointsman.errors.UpstreamServerError`."""
    if data.get("status") == "failed":
        error = data.get("error")
        why = error.get("message") if isinstance(error, Mapping) else None
        raise UpstreamServerError(f"upstream response failed: {why}",
                                  model)
    found, calls = _read_output(data.get("output") or ())
    message: dict[str, Any] = {"role": "assistant", "content": "".join(found["text"]) or None}
    if found["refusal"]:
        message["refusal"] = "".join(found["refusal"])
    if calls:
        message["tool_calls"] = calls
    if found["reasoning"]:
        message["reasoning_content"] = "\n\n".join(found["reasoning"])
    logprobs = {"content": found["logprobs"], "refusal": None} if found["logprobs"] else None
    completion: dict[str, Any] = {
        "id": data.get("id"), "object": "chat.completion",
        "created": int(data.get("created_at") or time.time()),
        "model": data.get("model") or model,
        "choices": [{"index": 0, "message": message, "logprobs": logprobs,
                     "finish_reason": finish_reason(data.get("status"),
                                                    data.get("incomplete_details"),
                                                    bool(calls))}]}
    usage = usage_dict(data.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


# -- stream -------------------------------------------------------------------------------

class StreamTranslator:
    """Responses stream events in, IR ``chat.completion.chunk`` dicts out.

    Function calls become ``tool_calls`` deltas indexed by their order among the calls (as
    Chat Completions numbers them); ``response.completed`` / ``response.incomplete`` end the
    stream with a finish chunk and, when asked for, a usage chunk; ``response.failed`` and
    ``error`` events raise :class:`~pointsman.errors.StreamBrokenError`.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = ""
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        self.tools: dict[int, int] = {}  # output_index -> tool_calls index
        self.started = False
        self.done = False

    def chunk(self, delta: Item, finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event makes (often none). Raises StreamBrokenError on bad input."""
        try:
            chunks = self._feed(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StreamBrokenError(f"malformed Responses stream event "
                                    f"{event.get('type')!r}: {exc!r}", self.model) from None
        if chunks and not self.started:
            self.started = True
            return [self.chunk({"role": "assistant", "content": ""}), *chunks]
        return chunks

    def _feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = str(event.get("type"))
        if kind == "response.created":
            self._start(event["response"])
            self.started = True
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return [self._text(event)]
        if kind == "response.output_item.added":
            return self._item_added(int(event["output_index"]), event["item"])
        if kind == "response.function_call_arguments.delta":
            return self._arguments(int(event["output_index"]), str(event["delta"]))
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [self.chunk({"reasoning_content": str(event["delta"])})]
        if kind == "response.reasoning_summary_part.added" and int(event["summary_index"]):
            return [self.chunk({"reasoning_content": "\n\n"})]
        if kind == "response.refusal.delta":
            return [self.chunk({"refusal": str(event["delta"])})]
        if kind in ("response.completed", "response.incomplete"):
            return self._end(event["response"])
        if kind in ("response.failed", "error"):
            raise StreamBrokenError(f"upstream error mid-stream: {self._error(event)}",
                                    self.model)
        return []  # in_progress, *.done, content_part.*, and event types added later

    def _start(self, response: Mapping[str, Any]) -> None:
        self.id = str(response.get("id") or "")
        self.model = str(response.get("model") or self.model)
        self.created = int(response.get("created_at") or self.created)

    def _text(self, event: Mapping[str, Any]) -> dict[str, Any]:
        chunk = self.chunk({"content": str(event["delta"])})
        logprobs = chat_logprobs(event.get("logprobs"))
        if logprobs:
            chunk["choices"][0]["logprobs"] = {"content": logprobs, "refusal": None}
        return chunk

    def _item_added(self, index: int, item: Mapping[str, Any]) -> list[dict[str, Any]]:
        if item.get("type") != "function_call":
            return []
        self.tools[index] = len(self.tools)
        return [self.chunk({"tool_calls": [{
            "index": self.tools[index], "id": str(item["call_id"]), "type": "function",
            "function": {"name": str(item["name"]), "arguments": item.get("arguments") or ""}}]})]

    def _arguments(self, index: int, delta: str) -> list[dict[str, Any]]:
        if index not in self.tools or not delta:
            return []
        return [self.chunk({"tool_calls": [{"index": self.tools[index],
                                            "function": {"arguments": delta}}]})]

    def _end(self, response: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.done = True
        finish = finish_reason(response.get("status"), response.get("incomplete_details"),
                               bool(self.tools))
        chunks = [self.chunk({}, finish)]
        usage = usage_dict(response.get("usage"))
        if self.include_usage and usage is not None:
            chunks.append({**self.chunk({}), "choices": [], "usage": usage})
        return chunks

    @staticmethod
    def _error(event: Mapping[str, Any]) -> str:
        if event.get("type") == "error":
            return str(event.get("message"))
        response = event.get("response")
        error = response.get("error") if isinstance(response, Mapping) else None
        return str(error.get("message")) if isinstance(error, Mapping) else "response failed"
