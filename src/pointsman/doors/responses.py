"""The OpenAI Responses API front door (``POST /v1/responses``), as Codex CLI and the
OpenAI SDKs speak it.

The translations live beside it: :mod:`~pointsman.doors.responses_input` (request → IR),
:mod:`~pointsman.doors.responses_output` (IR answer → ``response``) and
:mod:`~pointsman.doors.responses_stream` (IR chunks → Responses events).

Conversation state (``previous_response_id``) is kept by the caller of two pure helpers:
:func:`conversation_items` gives what to store once a response is finished, and
:func:`continue_input` puts the stored items in front of the next request's input. Like
OpenAI, the instructions of earlier turns are not carried over; reasoning items are left
out too (a Chat upstream cannot take them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pointsman.doors.base import AnswerContext, DoorName, StreamEncoder
from pointsman.doors.responses_input import to_chat as _to_chat
from pointsman.doors.responses_output import answer as _answer
from pointsman.doors.responses_stream import ResponsesEncoder
from pointsman.errors import InputError, PointsmanError
from pointsman.gateway.errors import error_payload

Json = dict[str, Any]


class ResponsesDoor:
    """The Responses API door (implements :class:`~pointsman.doors.base.Door`)."""

    name: DoorName = "responses"

    def to_chat(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Json:
        return _to_chat(body)

    def answer(self, completion: Mapping[str, Any], ctx: AnswerContext) -> Json:
        return _answer(completion, ctx)

    def encoder(self, ctx: AnswerContext) -> StreamEncoder:
        return ResponsesEncoder(ctx)

    def error_body(self, error: PointsmanError, status: int) -> Json:
        """OpenAI's error shape, the same as the Chat Completions door's."""
        return error_payload(error)[1]


def _user_item(text: str) -> Json:
    return {"type": "message", "role": "user", "content": text}


def _input_items(raw: Any) -> list[Any]:
    """A request's ``input`` as items: a string is one user message; messages sent without
    ``type`` get it; reasoning items are left out. Malformed items are kept as they are,
    for :meth:`ResponsesDoor.to_chat` to name."""
    if isinstance(raw, str):
        return [_user_item(raw)]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("'input' must be a string or a list of items", "input")
    return [({"type": "message", **item} if "type" not in item else dict(item))
            if isinstance(item, Mapping) else item
            for item in raw
            if not (isinstance(item, Mapping) and item.get("type") == "reasoning")]


def conversation_items(request_body: Mapping[str, Any],
                       response_obj: Mapping[str, Any]) -> list[Json]:
    """What to store for a finished response, for a later ``previous_response_id``: this
    turn's input items (``request_body`` is the body as translated, so after
    :func:`continue_input` it already holds the earlier turns) and the response's output
    items."""
    output = response_obj.get("output")
    items = _input_items(request_body.get("input")) + [
        item for item in (output if isinstance(output, list) else ())
        if not (isinstance(item, Mapping) and item.get("type") == "reasoning")]
    return [dict(item) for item in items if isinstance(item, Mapping)]


def continue_input(stored_items: Sequence[Mapping[str, Any]],
                   body: Mapping[str, Any]) -> Json:
    """``body`` with the stored conversation in front of its own input."""
    if not isinstance(body, Mapping):
        raise InputError("the body must be a JSON object")
    if isinstance(stored_items, str | bytes) or not isinstance(stored_items, Sequence) or not all(
            isinstance(item, Mapping) for item in stored_items):
        raise InputError("the stored conversation must be a list of items",
                         "previous_response_id")
    return {**body, "input": [dict(item) for item in stored_items]
            + _input_items(body.get("input"))}
