"""The gateway's own OpenAPI 3.1 document (``GET /openapi.json``): every route of every door.

The request bodies are hand-written JSON Schemas of the three wire formats, limited to the
fields the doors read (each format allows fields beyond them: ``additionalProperties`` is
left open where the format is). They document the gateway and drive
``tests/test_gateway_openapi.py`` (schemathesis); the doors' own validation stays the
authority on what is accepted.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pointsman import jsonio

Schema = dict[str, Any]
STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
NUM: Schema = {"type": "number"}
OBJ: Schema = {"type": "object"}


def obj(props: Schema, required: tuple[str, ...] = (), extra: bool = True) -> Schema:
    out: Schema = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = list(required)
    return out


def arr(items: Schema, min_items: int = 0) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if min_items:
        out["minItems"] = min_items
    return out


def either(*schemas: Schema) -> Schema:
    return {"anyOf": list(schemas)}


def nullable(schema: Schema) -> Schema:
    return either(schema, {"type": "null"})


CACHE = obj({"type": {"const": "ephemeral"}, "ttl": STR})

# -- Chat Completions -------------------------------------------------------------------
CHAT_PART = obj({"type": {"enum": ["text", "image_url", "input_audio", "file", "refusal"]},
                 "text": STR, "image_url": either(STR, obj({"url": STR, "detail": STR},
                                                           ("url",))),
                 "cache_control": CACHE}, ("type",))
CHAT_TOOL_CALL = obj({"id": STR, "type": {"const": "function"},
                      "function": obj({"name": STR, "arguments": STR}, ("name",))},
                     ("function",))
CHAT_MESSAGE = obj({
    "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
    "content": nullable(either(STR, arr(CHAT_PART))), "name": STR,
    "tool_calls": arr(CHAT_TOOL_CALL), "tool_call_id": STR}, ("role",))
CHAT_TOOL = obj({"type": {"const": "function"},
                 "function": obj({"name": {"type": "string", "minLength": 1},
                                  "description": STR, "parameters": OBJ, "strict": BOOL},
                                 ("name",))}, ("function",))
STOP = either({"type": "string", "minLength": 1},
              arr({"type": "string", "minLength": 1}) | {"maxItems": 16})
CHAT_REQUEST = obj({
    "model": {"type": "string", "minLength": 1}, "messages": arr(CHAT_MESSAGE, 1),
    "stream": BOOL, "stream_options": obj({"include_usage": BOOL}),
    "max_tokens": {"type": "integer", "minimum": 1},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "n": {"type": "integer", "minimum": 1}, "seed": INT, "stop": STOP,
    "tools": arr(CHAT_TOOL),
    "tool_choice": either({"enum": ["none", "auto", "required"]},
                          obj({"type": {"const": "function"},
                               "function": obj({"name": STR}, ("name",))}, ("type",))),
    "parallel_tool_calls": BOOL, "user": STR, "metadata": OBJ,
    "response_format": obj({"type": {"enum": ["text", "json_object", "json_schema"]},
                            "json_schema": obj({"name": STR, "schema": OBJ,
                                                "strict": BOOL})}, ("type",)),
    "reasoning_effort": STR, "logprobs": BOOL, "top_logprobs": INT}, ("model", "messages"))

# -- Anthropic Messages -----------------------------------------------------------------
TEXT_BLOCK = obj({"type": {"const": "text"}, "text": STR, "cache_control": CACHE},
                 ("type", "text"))
MESSAGES_BLOCK = either(
    TEXT_BLOCK,
    obj({"type": {"const": "image"}, "source": obj({"type": STR, "media_type": STR,
                                                    "data": STR, "url": STR}, ("type",))},
        ("type", "source")),
    obj({"type": {"const": "tool_use"}, "id": STR, "name": STR, "input": OBJ},
        ("type", "id", "name", "input")),
    obj({"type": {"const": "tool_result"}, "tool_use_id": STR,
         "content": either(STR, arr(TEXT_BLOCK)), "is_error": BOOL},
        ("type", "tool_use_id")),
    obj({"type": {"const": "thinking"}, "thinking": STR, "signature": STR},
        ("type", "thinking", "signature")))
MESSAGES_TOOL = obj({"name": {"type": "string", "minLength": 1}, "description": STR,
                     "input_schema": OBJ, "cache_control": CACHE}, ("name", "input_schema"))
MESSAGES_REQUEST = obj({
    "model": {"type": "string", "minLength": 1},
    "messages": arr(obj({"role": {"enum": ["user", "assistant"]},
                         "content": either(STR, arr(MESSAGES_BLOCK))},
                        ("role", "content")), 1),
    "max_tokens": {"type": "integer", "minimum": 1},
    "system": either(STR, arr(TEXT_BLOCK)), "stop_sequences": arr(STR),
    "stream": BOOL, "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1},
    "metadata": obj({"user_id": STR}), "tools": arr(MESSAGES_TOOL),
    "tool_choice": obj({"type": {"enum": ["auto", "any", "tool", "none"]}, "name": STR,
                        "disable_parallel_tool_use": BOOL}, ("type",)),
    "thinking": obj({"type": {"enum": ["enabled", "disabled", "adaptive"]},
                     "budget_tokens": INT}, ("type",))},
    ("model", "messages", "max_tokens"))
COUNT_TOKENS_REQUEST = {**MESSAGES_REQUEST, "required": ["model", "messages"]}

# -- OpenAI Responses -------------------------------------------------------------------
RESPONSES_PART = obj({"type": {"enum": ["input_text", "output_text", "input_image",
                                        "input_file"]},
                      "text": STR, "image_url": STR, "file_id": STR, "detail": STR},
                     ("type",))
RESPONSES_ITEM = either(
    obj({"type": {"const": "message"}, "role": {"enum": ["user", "assistant", "system",
                                                         "developer"]},
         "content": either(STR, arr(RESPONSES_PART))}, ("role", "content")),
    obj({"type": {"const": "function_call"}, "call_id": STR, "name": STR,
         "arguments": STR}, ("type", "call_id", "name", "arguments")),
    obj({"type": {"const": "function_call_output"}, "call_id": STR, "output": STR},
        ("type", "call_id", "output")))
RESPONSES_REQUEST = obj({
    "model": {"type": "string", "minLength": 1},
    "input": either(STR, arr(RESPONSES_ITEM)), "instructions": nullable(STR),
    "previous_response_id": nullable(STR), "store": BOOL, "stream": BOOL,
    "max_output_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "tools": arr(obj({"type": {"const": "function"}, "name": {"type": "string",
                                                             "minLength": 1},
                      "description": STR, "parameters": OBJ, "strict": BOOL},
                     ("type", "name"))),
    "tool_choice": either({"enum": ["none", "auto", "required"]},
                          obj({"type": {"const": "function"}, "name": STR},
                              ("type", "name"))),
    "parallel_tool_calls": BOOL, "user": STR, "metadata": OBJ,
    "text": obj({"format": obj({"type": {"enum": ["text", "json_object", "json_schema"]},
                                "name": STR, "schema": OBJ, "strict": BOOL}, ("type",)),
                 "verbosity": {"enum": ["low", "medium", "high"]}}),
    "reasoning": obj({"effort": {"enum": ["none", "minimal", "low", "medium", "high"]},
                      "summary": {"enum": ["auto", "concise", "detailed"]}})},
    ("model", "input"))


FEEDBACK_REQUEST = obj({
    "request_id": STR, "score": {"type": "number", "minimum": 0, "maximum": 1},
    "thumbs": {"enum": ["up", "down"]}, "source": STR, "comment": STR}, ("request_id",))


def _ok(description: str, schema: Schema | None = None, media: str = "application/json"
        ) -> Schema:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media: {"schema": schema}}}


ERRORS: Schema = {status: _ok(text, OBJ) for status, text in (
    ("400", "invalid request (names the field)"), ("401", "missing or wrong API key"),
    ("403", "the key may not use this model or endpoint"), ("404", "unknown model or id"),
    ("413", "body too large"), ("415", "not application/json"),
    ("429", "budget or upstream rate limit"), ("502", "every upstream attempt failed"),
    ("503", "no deployment or store unavailable"), ("504", "upstream timeout"))}


def _post(summary: str, body: Schema, answer: str, stream: bool = True) -> Schema:
    responses = {"200": {"description": answer, "content": {
        "application/json": {"schema": OBJ},
        **({"text/event-stream": {"schema": STR}} if stream else {})}}, **ERRORS}
    return {"post": {"summary": summary, "requestBody": {
        "required": True, "content": {"application/json": {"schema": body}}},
        "responses": responses}}


def _get(summary: str, params: tuple[str, ...] = (), query: tuple[str, ...] = (),
         media: str = "application/json") -> Schema:
    parameters = [{"name": p, "in": "path", "required": True, "schema": STR} for p in params]
    parameters += [{"name": q, "in": "query", "required": False, "schema": STR} for q in query]
    op: Schema = {"summary": summary, "responses": {"200": _ok(summary, OBJ if media ==
                                                               "application/json" else STR,
                                                               media), **ERRORS}}
    if parameters:
        op["parameters"] = parameters
    return op


def _dashboard() -> Schema:
    """The web dashboard (``gateway.ui.enabled``): its page, static files and read-only
    JSON API (admin keys; ``window``: seconds of history)."""
    window = ("window",)
    page = {**_get("The dashboard's page (it asks for an admin key)", media="text/html"),
            "security": []}
    return {
        "/ui": {"get": page},
        "/ui/static/{name}": {"get": {**_get("A static file of the dashboard", ("name",),
                                              media="text/plain"), "security": []}},
        "/ui/api/overview": {"get": _get("Dashboard: requests, spend, savings over time",
                                         (), window)},
        "/ui/api/routing": {"get": _get("Dashboard: share by model, tier, reason", (), window)},
        "/ui/api/latency": {"get": _get("Dashboard: latency windows and cooldowns", (),
                                        window)},
        "/ui/api/budgets": {"get": _get("Dashboard: budget positions and alerts")},
        "/ui/api/experiments": {"get": _get("Dashboard: experiments and labels", (), window)},
        "/ui/api/requests": {"get": _get("Dashboard: the request log, filtered", (), (
            "window", "before", "limit", "model", "outcome", "key", "user", "team", "door",
            "experiment"))},
        "/ui/api/requests/{request_id}": {"get": _get("Dashboard: one logged request",
                                                      ("request_id",))},
    }


def document() -> Schema:
    """The OpenAPI 3.1 document (built once per process: see :func:`openapi_endpoint`)."""
    chat = _post("OpenAI Chat Completions", CHAT_REQUEST, "a chat.completion or its chunks")
    by_id = ("response_id",)
    paths: Schema = {
        "/v1/chat/completions": chat, "/chat/completions": chat,
        "/v1/messages": _post("Anthropic Messages", MESSAGES_REQUEST, "a message or events"),
        "/v1/messages/count_tokens": _post("Input tokens of a Messages request (estimated)",
                                           COUNT_TOKENS_REQUEST, "{input_tokens}", False),
        "/v1/responses": _post("OpenAI Responses", RESPONSES_REQUEST, "a response or events"),
        "/v1/responses/{response_id}": {
            "get": _get("A stored response", by_id),
            "delete": {**_get("Delete a stored response", by_id), "summary": "Delete"}},
        "/v1/models": {"get": _get("The catalog's models")},
        "/v1/models/{model}": {"get": _get("One model", ("model",))},
        "/health": {"get": {**_get("Liveness"), "security": []}},
        "/metrics": {"get": {**_get("Prometheus metrics", media="text/plain"),
                             "security": []}},
        "/v1/spend": {"get": _get("Spend report (admin keys)", (),
                                  ("key", "user", "team", "window"))},
        "/v1/feedback": _post("Label a request (its x-pointsman-request-id)",
                              FEEDBACK_REQUEST, "the stored label", False),
        "/v1/experiments/{name}": {"get": _get("An experiment's report (admin keys)",
                                               ("name",))},
        "/admin/reload": _post("Reload the config file (admin keys)", OBJ,
                               "what changed, or why the new config was refused", False),
        **_dashboard(),
    }
    return {"openapi": "3.1.0",
            "info": {"title": "pointsman gateway", "version": "1"},
            "paths": paths,
            "components": {"securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
            "security": [{"bearer": []}, {"apiKey": []}]}


_DOCUMENT: bytes | None = None


async def openapi_endpoint(request: Request) -> Response:
    """``GET /openapi.json`` (no key needed: it describes the API, nothing of its data)."""
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = jsonio.dumps(document())
    return Response(_DOCUMENT, media_type="application/json")
