"""The IR answer (a ``chat.completion``) as a Responses API ``response`` object, and the
pieces the stream encoder shares with it (output items, usage, the echoed request).

    message.reasoning_content        a ``reasoning`` item with one summary part
    message.content / refusal        a ``message`` item (``output_text`` / ``refusal``)
    message.tool_calls               ``function_call`` items
    finish_reason length             status ``incomplete``, reason ``max_output_tokens``
    finish_reason content_filter     status ``incomplete``, reason ``content_filter``
    usage                            input / output tokens with their details

The response echoes the request's parameters as OpenAI does (instructions, tools,
tool_choice, text, reasoning, store ...). Only the function tools are echoed: they are the
tools the model could use (the others were dropped on the way in). Item ids are derived
from the response id and the item's place in ``output``, so the stream and the stored
answer agree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pointsman.doors.base import AnswerContext, StreamUsage
from pointsman.errors import BudgetExceededError, PointsmanError, RateLimitedError, http_status
from pointsman.gateway.errors import error_payload

Json = dict[str, Any]
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
ID_PREFIX = {"message": "msg", "reasoning": "rs", "function_call": "fc"}


def response_id(ctx: AnswerContext) -> str:
    return f"resp_{ctx.request_id}"


def item_id(ctx: AnswerContext, kind: str, index: int) -> str:
    return f"{ID_PREFIX[kind]}_{ctx.request_id}_{index}"


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(id_: str, text: str, refusal: str = "", status: str = "completed") -> Json:
    content = [text_part(text)] if text or not refusal else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": id_, "type": "message", "role": "assistant", "status": status,
            "content": content}


def reasoning_item(id_: str, text: str, status: str = "completed") -> Json:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": id_, "type": "reasoning", "summary": summary, "status": status}


def call_item(id_: str, call_id: str, name: str, arguments: str,
              status: str = "completed") -> Json:
    return {"id": id_, "type": "function_call", "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


# -- the echoed request --------------------------------------------------------------


def _of(request: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = request.get(name)
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


def _echo_tools(request: Mapping[str, Any]) -> list[Json]:
    tools = request.get("tools")
    out: list[Json] = []
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, Mapping) and tool.get("type") == "function" and isinstance(
                tool.get("name"), str):
            out.append({"type": "function", "name": tool["name"],
                        "description": _of(tool, "description", str),
                        "parameters": _of(tool, "parameters", dict),
                        "strict": _of(tool, "strict", bool)})
    return out


def _echo_choice(request: Mapping[str, Any]) -> Any:
    choice = request.get("tool_choice")
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function" and isinstance(
            choice.get("name"), str):
        return {"type": "function", "name": choice["name"]}
    return "auto"


def _echo_text(request: Mapping[str, Any]) -> Json:
    text = _of(request, "text", dict) or {}
    fmt = text.get("format")
    out: Json = {"format": dict(fmt) if isinstance(fmt, Mapping) else {"type": "text"}}
    if isinstance(text.get("verbosity"), str):
        out["verbosity"] = text["verbosity"]
    return out


def _echo_reasoning(request: Mapping[str, Any]) -> Json:
    reasoning = _of(request, "reasoning", dict) or {}
    return {"effort": _of(reasoning, "effort", str), "summary": _of(reasoning, "summary", str)}


def echo(request: Mapping[str, Any]) -> Json:
    """The request's parameters as a response carries them."""
    store = _of(request, "store", bool)
    parallel = _of(request, "parallel_tool_calls", bool)
    out: Json = {
        "instructions": _of(request, "instructions", str),
        "metadata": _of(request, "metadata", dict) or {},
        "parallel_tool_calls": True if parallel is None else parallel,
        "tool_choice": _echo_choice(request), "tools": _echo_tools(request),
        "text": _echo_text(request), "reasoning": _echo_reasoning(request),
        "store": True if store is None else store,
        "truncation": _of(request, "truncation", str) or "disabled",
    }
    for name in ("temperature", "top_p"):
        out[name] = _of(request, name, (int, float))
    out["max_output_tokens"] = _of(request, "max_output_tokens", int)
    for name in ("previous_response_id", "user", "prompt_cache_key", "safety_identifier",
                 "service_tier"):
        out[name] = _of(request, name, str)
    return out


def response_object(ctx: AnswerContext, status: str, output: list[Json],
                    created_at: int, echoed: Json | None = None) -> Json:
    """The ``response`` object around ``output`` (no usage yet); ``echoed``: the
    request's :func:`echo`, when the caller has it already."""
    return {"id": response_id(ctx), "object": "response", "created_at": created_at,
            "status": status, "background": False, "error": None,
            "incomplete_details": None, "model": ctx.model, "output": output,
            "usage": None, **(echo(ctx.request) if echoed is None else echoed)}


def finish(response: Json, finish_reason: Any) -> Json:
    """Status ``completed``, or ``incomplete`` with the reason for a cut-short answer."""
    reason = INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    if not reason:
        response["completed_at"] = int(time.time())
    return response


# -- usage ---------------------------------------------------------------------------


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage(usage: StreamUsage) -> Json:
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                     "cache_write_tokens": usage.cache_creation_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


def usage_of(raw: Any) -> Json | None:
    """IR (OpenAI Chat) usage as Responses usage."""
    if not isinstance(raw, Mapping):
        return None
    prompt = raw.get("prompt_tokens_details")
    completion = raw.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, Mapping) else {}
    completion = completion if isinstance(completion, Mapping) else {}
    return usage(StreamUsage(
        _int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens")),
        _int(prompt.get("cached_tokens")), _int(prompt.get("cache_creation_tokens")),
        _int(completion.get("reasoning_tokens"))))


# -- the answer ----------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts, should an upstream answer with them
        return "".join(p["text"] for p in value
                       if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _calls(ctx: AnswerContext, calls: Any, start: int) -> list[Json]:
    out: list[Json] = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        index = start + len(out)
        call_id = call.get("id") if isinstance(call.get("id"), str) else None
        out.append(call_item(item_id(ctx, "function_call", index),
                             call_id or f"call_{ctx.request_id}_{index}",
                             _text(function.get("name")), _text(function.get("arguments"))))
    return out


def output_of(message: Mapping[str, Any], ctx: AnswerContext) -> list[Json]:
    """An IR answer message as Responses output items."""
    output: list[Json] = []
    reasoning = _text(message.get("reasoning_content"))
    if reasoning:
        output.append(reasoning_item(item_id(ctx, "reasoning", 0), reasoning))
    text, refusal = _text(message.get("content")), _text(message.get("refusal"))
    if text or refusal:
        output.append(message_item(item_id(ctx, "message", len(output)), text, refusal))
    return output + _calls(ctx, message.get("tool_calls"), len(output))


def answer(completion: Mapping[str, Any], ctx: AnswerContext) -> Json:
    """An IR ``chat.completion`` as a Responses ``response``."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, Mapping) else {}
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    created = completion.get("created")
    created = created if isinstance(created, int) else int(time.time())
    response = response_object(ctx, "completed", output_of(message, ctx), created)
    response["usage"] = usage_of(completion.get("usage"))
    return finish(response, choice.get("finish_reason"))


# -- errors --------------------------------------------------------------------------


def failure(error: PointsmanError) -> Json:
    """A failed response's ``error``. Its code is one the SDK knows (``rate_limit_exceeded``
    or ``server_error``); a wait the upstream asked for is written the way Codex reads it
    ("try again in Ns")."""
    _, payload = error_payload(error)
    detail = payload["error"]
    limited = isinstance(error, RateLimitedError | BudgetExceededError) or http_status(
        error) == 429
    message = str(detail["message"])
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        message += f" Please try again in {error.retry_after:g}s."
    return {"code": "rate_limit_exceeded" if limited else "server_error", "message": message,
            "type": detail["type"], "param": detail["param"]}
