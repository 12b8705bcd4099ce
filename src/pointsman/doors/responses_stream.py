"""The IR stream (``chat.completion.chunk`` batches) as Responses API server-sent events.

Each event is ``event: <type>`` + ``data: <json>`` and carries a rising
``sequence_number``. The stream opens with ``response.created`` and
``response.in_progress``; then, per output item::

    text          output_item.added (message), content_part.added,
                  output_text.delta ..., output_text.done, content_part.done,
                  output_item.done
    reasoning     output_item.added (reasoning), reasoning_summary_part.added,
                  reasoning_summary_text.delta ..., reasoning_summary_text.done,
                  reasoning_summary_part.done, output_item.done
    tool call     output_item.added (function_call, arguments ""),
                  function_call_arguments.delta ..., function_call_arguments.done,
                  output_item.done

A message or reasoning item ends when another item starts; tool calls stay open to the end
(their deltas are keyed by the IR's tool-call index and may interleave). The stream ends
with ``response.completed`` (or ``response.incomplete`` for an answer cut short, as OpenAI
sends it) carrying the whole response and its usage; a stream that breaks ends with an
``error`` event and ``response.failed`` (Codex reads the latter's ``response.error``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pointsman import jsonio
from pointsman.doors.base import AnswerContext, Chunk, StreamUsage
from pointsman.doors.responses_output import (
    call_item,
    echo,
    failure,
    finish,
    item_id,
    message_item,
    reasoning_item,
    response_object,
    text_part,
    usage,
)
from pointsman.errors import PointsmanError

Json = dict[str, Any]
_PLAIN = frozenset({"role", "content"})  # a delta of text only


@dataclass(slots=True)
class _Item:
    """One output item being streamed; ``text`` is its text, summary or arguments."""

    kind: str
    index: int
    id: str
    text: str = ""
    call_id: str = ""
    name: str = ""
    done: bool = False

    def final(self, status: str = "completed") -> Json:
        if self.kind == "message":
            return message_item(self.id, self.text, status=status)
        if self.kind == "reasoning":
            return reasoning_item(self.id, self.text, status)
        return call_item(self.id, self.call_id, self.name, self.text, status)


class ResponsesEncoder:
    """One stream's encoder (see the module docstring)."""

    def __init__(self, ctx: AnswerContext) -> None:
        self.ctx = ctx
        self.created_at = int(time.time())
        self.sequence = 0
        self.items: list[_Item] = []
        self.current: _Item | None = None  # the open message or reasoning item
        self.calls: dict[int, _Item] = {}  # IR tool-call index → its item
        self.finish_reason: str | None = None
        self.started = False
        self.out = bytearray()
        self.response: Json | None = None  # the whole response, once closed
        self._delta_mid = b""  # the open message's text delta event, between its parts
        self.echoed = echo(ctx.request)  # the request's parameters, as every response has

    # -- the StreamEncoder protocol --------------------------------------------------

    def encode(self, batch: Sequence[Chunk]) -> bytes:
        self._start()
        for chunk in batch:
            choices = chunk.get("choices")
            if choices.__class__ is list and len(choices) == 1:  # a token chunk, inline
                choice = choices[0]
                delta = choice.get("delta") if choice.__class__ is dict else None
                if delta.__class__ is dict and delta.keys() <= _PLAIN \
                        and choice.get("finish_reason") is None and choice.get("index", 0) == 0:
                    content = delta.get("content")
                    if content.__class__ is str and content:
                        self._text(content)
                    continue
            for choice in choices if isinstance(choices, list) else ():
                if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                    self._choice(choice)
        return self._flush()

    def close(self, stream_usage: StreamUsage) -> bytes:
        self._start()
        self._end_current()
        for item in self.items:
            if not item.done:
                self._end(item)
        response = response_object(self.ctx, "completed", [i.final() for i in self.items],
                                   self.created_at, self.echoed)
        response["usage"] = usage(stream_usage)
        finish(response, self.finish_reason)
        kind = "completed" if response["status"] == "completed" else "incomplete"
        self._emit(f"response.{kind}", response=response)
        self.response = response
        return self._flush()

    def final(self) -> Json | None:
        """The whole response a closed stream ended with (what a stored response keeps)."""
        return self.response

    def fail(self, error: PointsmanError) -> bytes:
        self._start()
        detail = failure(error)
        self._emit("error", code=error.code, message=detail["message"], param=detail["param"])
        output = [i.final("completed" if i.done else "incomplete") for i in self.items]
        response = response_object(self.ctx, "failed", output, self.created_at, self.echoed)
        response["error"] = detail
        self._emit("response.failed", response=response)
        return self._flush()

    # -- events ------------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> None:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        self.out += b"event: " + kind.encode() + b"\ndata: " + jsonio.dumps(event) + b"\n\n"

    def _flush(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        response = jsonio.dumps(response_object(self.ctx, "in_progress", [], self.created_at,
                                                self.echoed))
        for kind in (b"response.created", b"response.in_progress"):  # one object, dumped once
            self.out += (b"event: " + kind + b'\ndata: {"type":"' + kind
                         + b'","sequence_number":' + str(self.sequence).encode()
                         + b',"response":' + response + b"}\n\n")
            self.sequence += 1

    def _choice(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            reasoning, content = delta.get("reasoning_content"), delta.get("content")
            if isinstance(reasoning, str) and reasoning:
                self._reasoning(reasoning)
            if isinstance(content, str) and content:
                self._text(content)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, Mapping):
                    self._call(call)
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]

    def _open(self, kind: str) -> _Item:
        self._end_current()
        index = len(self.items)
        item = _Item(kind, index, item_id(self.ctx, kind, index))
        self.items.append(item)
        if kind != "function_call":
            self.current = item
        return item

    def _where(self, item: _Item) -> Json:
        return {"item_id": item.id, "output_index": item.index}

    def _text(self, text: str) -> None:
        """A text delta; the event's constant parts are built once per item (this runs once
        per streamed token)."""
        item = self.current if self.current and self.current.kind == "message" else None
        if item is None:
            item = self._open("message")
            self._emit("response.output_item.added", output_index=item.index, item={
                "id": item.id, "type": "message", "role": "assistant",
                "status": "in_progress", "content": []})
            self._emit("response.content_part.added", **self._where(item), content_index=0,
                       part=text_part(""))
            self._delta_mid = (b',"item_id":' + jsonio.dumps(item.id) + b',"output_index":'
                               + str(item.index).encode() + b',"content_index":0,"delta":')
        item.text += text
        self.out += (b'event: response.output_text.delta\ndata: {"type":"response.output_text'
                     b'.delta","sequence_number":' + str(self.sequence).encode()
                     + self._delta_mid + jsonio.dumps(text) + b',"logprobs":[]}\n\n')
        self.sequence += 1

    def _reasoning(self, text: str) -> None:
        item = self.current if self.current and self.current.kind == "reasoning" else None
        if item is None:
            item = self._open("reasoning")
            self._emit("response.output_item.added", output_index=item.index,
                       item=reasoning_item(item.id, "", "in_progress"))
            self._emit("response.reasoning_summary_part.added", **self._where(item),
                       summary_index=0, part={"type": "summary_text", "text": ""})
        item.text += text
        self._emit("response.reasoning_summary_text.delta", **self._where(item),
                   summary_index=0, delta=text)

    def _call(self, call: Mapping[str, Any]) -> None:
        index = call.get("index")
        index = index if isinstance(index, int) else 0
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        name = function.get("name")
        item = self.calls.get(index)
        if item is None:
            item = self.calls[index] = self._open("function_call")
            call_id = call.get("id")
            item.call_id = call_id if isinstance(call_id, str) and call_id else (
                f"call_{self.ctx.request_id}_{item.index}")
            item.name = name if isinstance(name, str) else ""
            self._emit("response.output_item.added", output_index=item.index,
                       item=call_item(item.id, item.call_id, item.name, "", "in_progress"))
        elif isinstance(name, str) and not item.name:
            item.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            self._emit("response.function_call_arguments.delta", **self._where(item),
                       delta=arguments)

    def _end_current(self) -> None:
        if self.current is not None and not self.current.done:
            self._end(self.current)
        self.current = None

    def _end(self, item: _Item) -> None:
        item.done = True
        where = self._where(item)
        if item.kind == "message":
            self._emit("response.output_text.done", **where, content_index=0,
                       text=item.text, logprobs=[])
            self._emit("response.content_part.done", **where, content_index=0,
                       part=text_part(item.text))
        elif item.kind == "reasoning":
            self._emit("response.reasoning_summary_text.done", **where, summary_index=0,
                       text=item.text)
            self._emit("response.reasoning_summary_part.done", **where, summary_index=0,
                       part={"type": "summary_text", "text": item.text})
        else:
            self._emit("response.function_call_arguments.done", **where,
                       arguments=item.text)
        self._emit("response.output_item.done", output_index=item.index, item=item.final())
