"""Translation between OpenAI Chat Completions and Anthropic Messages (pure functions).

Request (OpenAI → Anthropic):
    system / developer messages     ``system`` (joined with blank lines)
    user, assistant text            the same roles; image_url parts become image blocks
    assistant ``tool_calls``        ``tool_use`` blocks (arguments parsed from JSON)
    ``tool`` messages               ``tool_result`` blocks in a user turn
    consecutive turns of one role   merged into one turn (Anthropic alternates roles)
    tools / tool_choice             ``{name, description, input_schema}`` / auto, any, none,
                                    tool; ``parallel_tool_calls: false`` →
                                    ``disable_parallel_tool_use``
    max_tokens / max_completion_tokens   ``max_tokens`` (required; the endpoint's default)
    stop                            ``stop_sequences``
    temperature (capped at 1), top_p, user → ``metadata.user_id``
    response_format json_object / json_schema   an instruction appended to ``system``
    anything else (n, seed, logprobs, penalties)   dropped: Anthropic has no equivalent

IR extensions (:mod:`pointsman.doors.base`): an assistant turn's ``thinking_blocks`` go
first (unsigned thinking is left out: Anthropic refuses it), ``cache_control`` stays on
text parts, system parts, tool results and tools, ``thinking`` and ``top_k`` pass
through, and tools whose type is not ``function`` are Anthropic server tools, sent as
they are. ``_pointsman`` is never sent (the adapter turns its beta/version into headers).

Response (Anthropic → OpenAI): text blocks → ``content``; thinking → ``reasoning_content``
and ``thinking_blocks``; tool_use → ``tool_calls`` with JSON-string arguments;
stop_reason end_turn / stop_sequence / pause_turn → stop (the matched stop sequence as
the choice's ``stop_reason``, as vLLM reports it), max_tokens → length, tool_use →
tool_calls, refusal → content_filter; usage input (+ cache) / output tokens → prompt /
completion tokens, cache reads / writes → ``prompt_tokens_details.cached_tokens`` /
``cache_creation_tokens``. Streams: thinking deltas → ``reasoning_content`` deltas,
signature deltas → ``thinking_blocks`` deltas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pointsman.errors import InputError, StreamBrokenError
from pointsman.providers.base import Usage, untranslatable_is_input

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
          "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
Block = dict[str, Any]


def _bad(message: str) -> InputError:
    return InputError(f"cannot translate for the Anthropic Messages API: {message}",
                      param="messages")


def _text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    raise _bad(f"content must be a string or a list of parts, not {type(content).__name__}")


def _image(url: str) -> Block:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").split(";")[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _parts(content: Any) -> list[Block]:
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad(f"content must be a string or a list of parts, not {type(content).__name__}")
    blocks: list[Block] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        block: Block
        if kind == "text":
            block = {"type": "text", "text": str(part.get("text", ""))}
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            block = _image(str(url))
        else:
            raise _bad(f"content part type {kind!r} is not supported")
        blocks.append(_cached(part, block))
    return blocks


def _cached(source: Mapping[str, Any], block: Block) -> Block:
    """``block`` with ``source``'s prompt-cache breakpoint (an IR extension), if any."""
    control = source.get("cache_control")
    if control is not None:
        block["cache_control"] = control
    return block


def _thinking(blocks: Any) -> list[Block]:
    """An assistant turn's ``thinking_blocks`` (replayed first). A thinking block without
    a signature did not come from Anthropic (another model's reasoning): Anthropic would
    refuse it, so it is left out."""
    out: list[Block] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": block.get("data")})
        elif block.get("type") == "thinking" and block.get("signature"):
            out.append({"type": "thinking", "thinking": block.get("thinking", ""),
                        "signature": block["signature"]})
    return out


def _tool_result(message: Mapping[str, Any]) -> Block:
    content = message.get("content")
    result: Block = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id"))}
    if isinstance(content, list) and any(isinstance(p, Mapping) and (
            "cache_control" in p or p.get("type") == "image_url") for p in content):
        result["content"] = _parts(content)
    else:
        result["content"] = _text(content)
    return result


def _tool_use(call: Any) -> Block:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping):
        raise _bad("an assistant tool_call has no function")
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise _bad(f"tool call {function.get('name')!r} has arguments that are not JSON") from None
    if not isinstance(arguments, dict):
        raise _bad(f"tool call {function.get('name')!r} arguments must be a JSON object")
    return {"type": "tool_use", "id": str(call.get("id", "")), "name": str(function.get("name")),
            "input": arguments}


def _turn(message: Mapping[str, Any]) -> tuple[str, list[Block]]:
    role = message.get("role")
    if role == "user":
        return "user", _parts(message.get("content"))
    if role == "assistant":
        blocks = [b for b in _parts(message.get("content")) if b.get("text") != ""]
        return "assistant", (_thinking(message.get("thinking_blocks")) + blocks
                             + [_tool_use(c) for c in message.get("tool_calls") or ()])
    if role == "tool":
        return "user", [_tool_result(message)]
    raise _bad(f"unknown message role {role!r}")


def _system_blocks(content: Any) -> list[Block]:
    """A system message as text blocks: a list of parts keeps each part's cache_control."""
    if isinstance(content, list) and any(isinstance(p, Mapping) and "cache_control" in p
                                         for p in content):
        return [b for b in _parts(content) if b.get("text")]
    text = _text(content)
    return [{"type": "text", "text": text}] if text else []


def system_of(blocks: list[Block]) -> str | list[Block]:
    """Anthropic ``system``: the text joined with blank lines, or the blocks themselves
    when one of them is a prompt-cache breakpoint."""
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


def translate_messages(messages: Any) -> tuple[list[Block], list[dict[str, Any]]]:
    """OpenAI messages → (Anthropic ``system`` blocks, Anthropic ``messages``)."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list")
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise _bad("every message must be an object")
        if message.get("role") in ("system", "developer"):
            system.extend(_system_blocks(message.get("content")))
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def translate_tools(tools: Sequence[Any]) -> list[Block]:
    """Function tools as Anthropic custom tools (cache_control kept); tools of another
    type are Anthropic server tools (web search, bash ...), sent as they are."""
    out = []
    for tool in tools:
        if isinstance(tool, Mapping) and tool.get("type") not in (None, "function"):
            out.append(dict(tool))
            continue
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not function.get("name"):
            raise InputError("every tool needs function.name", param="tools")
        entry: Block = {"name": function["name"], "input_schema": function.get("parameters")
                        or {"type": "object", "properties": {}}}
        if function.get("description"):
            entry["description"] = function["description"]
        out.append(_cached(tool, entry))
    return out


def translate_tool_choice(choice: Any, parallel: Any) -> Block | None:
    if choice is None and parallel is not False:
        return None
    if choice is None or choice == "auto":
        out: Block = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise InputError(f"unsupported tool_choice {choice!r}", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _json_instruction(response_format: Any) -> str:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        return "Respond with one JSON object and nothing else."
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return ("Respond with one JSON object that matches this JSON schema, and nothing "
                f"else: {json.dumps(schema)}")
    return ""


@untranslatable_is_input("Anthropic Messages")
def to_anthropic(body: Mapping[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """An OpenAI Chat Completions body as an Anthropic Messages body."""
    system, messages = translate_messages(body.get("messages"))
    instruction = _json_instruction(body.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                           "max_tokens": int(body.get("max_completion_tokens")
                                             or body.get("max_tokens") or default_max_tokens)}
    if system:
        out["system"] = system_of(system)
    if body.get("tools"):
        out["tools"] = translate_tools(body["tools"])
        choice = translate_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    for name in ("thinking", "top_k"):  # IR extensions (see pointsman.doors.base)
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stream"):
        out["stream"] = True
    return out


def usage_of(usage: Any) -> Usage | None:
    """Anthropic usage as IR usage. Anthropic's ``input_tokens`` leaves out the cache reads
    and writes; the IR's ``prompt_tokens`` is all three. Thinking is inside
    ``output_tokens`` and not reported apart (``reasoning_tokens`` stays 0)."""
    if not isinstance(usage, Mapping):
        return None
    read, write = (int(usage.get(k) or 0) for k in (
        "cache_read_input_tokens", "cache_creation_input_tokens"))
    prompt = int(usage.get("input_tokens") or 0) + read + write
    return Usage(prompt, int(usage.get("output_tokens") or 0), cached_tokens=read,
                 cache_creation_tokens=write)


def usage_dict(usage: Usage, cached: int | None = None,
               created: int | None = None) -> dict[str, Any]:
    """IR usage; ``prompt_tokens_details`` when Anthropic reported its prompt cache."""
    out: dict[str, Any] = {"prompt_tokens": usage.prompt_tokens,
                           "completion_tokens": usage.completion_tokens,
                           "total_tokens": usage.total_tokens}
    if cached is not None or created is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached or 0,
                                        "cache_creation_tokens": created or 0}
    return out


def cache_of(usage: Any) -> tuple[int | None, int | None]:
    """(cache reads, cache writes) of Anthropic usage; None where not reported."""
    if not isinstance(usage, Mapping):
        return None, None
    read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    return (None if read is None else int(read)), (None if write is None else int(write))


def thinking_of(blocks: Sequence[Mapping[str, Any]]) -> list[Block]:
    """An answer's thinking and redacted_thinking blocks, as the IR keeps them."""
    out: list[Block] = []
    for b in blocks:
        if b.get("type") == "thinking":
            out.append({"type": "thinking", "thinking": str(b.get("thinking") or ""),
                        "signature": str(b.get("signature") or "")})
        elif b.get("type") == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": str(b.get("data") or "")})
    return out


def to_completion(data: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages response as an OpenAI ``chat.completion``."""
    blocks = [b for b in data.get("content") or () if isinstance(b, Mapping)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    thinking = thinking_of(blocks)
    if thinking:
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        message["thinking_blocks"] = thinking
    calls = [{"id": b.get("id"), "type": "function",
              "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
             for b in blocks if b.get("type") == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    completion: dict[str, Any] = {
        "id": data.get("id"), "object": "chat.completion", "created": int(time.time()),
        "model": data.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": FINISH.get(str(data.get("stop_reason")), "stop")}]}
    if data.get("stop_reason") == "stop_sequence" and data.get("stop_sequence"):
        completion["choices"][0]["stop_reason"] = data["stop_sequence"]  # as vLLM says it
    usage = usage_of(data.get("usage"))
    if usage is not None:
        completion["usage"] = usage_dict(usage, *cache_of(data.get("usage")))
    return completion


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` dicts out.

    Tool-use blocks become ``tool_calls`` deltas indexed by their order among the tool
    calls (as OpenAI numbers them); the final chunk carries ``usage`` when asked for.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = ""
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        self.tools: dict[int, int] = {}
        self.prompt = 0
        self.completion = 0
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.done = False

    def chunk(self, delta: Block, finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event makes (often none). Raises StreamBrokenError on bad input."""
        try:
            return self._feed(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StreamBrokenError(f"malformed Anthropic stream event "
                                    f"{event.get('type')!r}: {exc!r}", self.model) from None

    def _feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = event["message"]
            self.id = str(message.get("id", ""))
            self.model = str(message.get("model") or self.model)
            self._count(message.get("usage"))
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(int(event["index"]), event["content_block"])
        if kind == "content_block_delta":
            return self._delta(int(event["index"]), event["delta"])
        if kind == "message_delta":
            self._count(event.get("usage"))
            delta = event["delta"]
            reason = delta.get("stop_reason")
            if not reason:
                return []
            chunk = self.chunk({}, FINISH.get(str(reason), "stop"))
            if reason == "stop_sequence" and delta.get("stop_sequence"):
                chunk["choices"][0]["stop_reason"] = delta["stop_sequence"]  # as vLLM says it
            return [chunk]
        if kind == "message_stop":
            self.done = True
            if not self.include_usage:
                return []
            usage = usage_dict(Usage(self.prompt, self.completion), self.cache_read,
                               self.cache_write)
            return [{**self.chunk({}), "choices": [], "usage": usage}]
        if kind == "error":
            error = event.get("error") or {}
            raise StreamBrokenError(f"upstream error mid-stream: {error.get('message')}",
                                    self.model)
        return []  # ping, content_block_stop and event types added later

    def _count(self, usage: Any) -> None:
        counted = usage_of(usage)
        if counted is None:
            return
        if any(k in usage for k in ("input_tokens", "cache_read_input_tokens")):
            self.prompt = max(self.prompt, counted.prompt_tokens)
        if "output_tokens" in usage:
            self.completion = counted.completion_tokens
        read, write = cache_of(usage)
        self.cache_read = self.cache_read if read is None else read
        self.cache_write = self.cache_write if write is None else write

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        if block["type"] == "tool_use":
            self.tools[index] = len(self.tools)
            return [self.chunk({"tool_calls": [{
                "index": self.tools[index], "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": ""}}]})]
        if block["type"] == "text" and block.get("text"):
            return [self.chunk({"content": block["text"]})]
        if block["type"] == "thinking" and block.get("thinking"):
            return [self.chunk({"reasoning_content": block["thinking"]})]
        if block["type"] == "redacted_thinking":
            return [self.chunk({"thinking_blocks": [{"type": "redacted_thinking",
                                                     "data": block["data"]}]})]
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        if delta["type"] == "text_delta":
            return [self.chunk({"content": delta["text"]})]
        if delta["type"] == "input_json_delta" and index in self.tools:
            if not delta["partial_json"]:
                return []
            return [self.chunk({"tool_calls": [{
                "index": self.tools[index], "function": {"arguments": delta["partial_json"]}}]})]
        if delta["type"] == "thinking_delta":
            return [self.chunk({"reasoning_content": delta["thinking"]})]
        if delta["type"] == "signature_delta":
            return [self.chunk({"thinking_blocks": [{"type": "thinking",
                                                     "signature": delta["signature"]}]})]
        return []
