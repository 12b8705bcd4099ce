"""The OpenAI Chat Completions door: the IR is this format, so translation is the identity.

Streams are ``chat.completion.chunk`` events ending in ``data: [DONE]``; the upstream's
usage is shown only when the caller asked for it (``stream_options.include_usage``; the
lifecycle always asks the upstream, to cost the stream). A stream that broke after its
first token ends with an error event, then ``[DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from pointsman import jsonio
from pointsman.doors.base import AnswerContext, Chunk, DoorName, StreamUsage
from pointsman.errors import PointsmanError

DONE = b"data: [DONE]\n\n"


def event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + jsonio.dumps(data) + b"\n\n"


def wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


class ChatDoor:
    name: DoorName = "chat"

    def to_chat(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """The identity (validated by :func:`pointsman.gateway.parse.parse_chat`); a
        caller's own ``_pointsman`` key is not trusted."""
        out = body if isinstance(body, dict) else dict(body)
        out.pop("_pointsman", None)
        return out

    def answer(self, completion: Mapping[str, Any], ctx: AnswerContext) -> dict[str, Any]:
        return completion if isinstance(completion, dict) else dict(completion)

    def encoder(self, ctx: AnswerContext) -> ChatEncoder:
        return ChatEncoder(ctx.model, wants_usage(ctx.request))

    def error_body(self, error: PointsmanError, status: int) -> dict[str, Any]:
        from pointsman.gateway.errors import error_payload

        return error_payload(error)[1]


class ChatEncoder:
    """What the caller is shown of the chunks: each with the answering model's catalog
    name, the upstream's usage only when asked for (a usage-only chunk is dropped, usage is
    cut from one that has choices)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.usage_sent = False
        self.last: Chunk = {}

    def encode(self, batch: Sequence[Chunk]) -> bytes:
        model = self.model
        parts: list[bytes] = []
        for chunk in self._shown(batch):  # one join for the batch, not two copies an event
            parts += (b"data: ", orjson.dumps({**chunk, "model": model}, default=jsonio.plain),
                      b"\n\n")
        return b"".join(parts)

    def _shown(self, batch: Sequence[Chunk]) -> list[Chunk]:
        out = []
        for chunk in batch:
            self.last = chunk
            if chunk.get("usage") is not None:
                if not self.include_usage:
                    if not chunk.get("choices"):
                        continue
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
                else:
                    self.usage_sent = True
            out.append(chunk)
        return out

    def close(self, usage: StreamUsage) -> bytes:
        if self.include_usage and not self.usage_sent:
            return event(self._usage_chunk(usage)) + DONE
        return DONE

    def _usage_chunk(self, usage: StreamUsage) -> dict[str, Any]:
        """The usage chunk the caller asked for, counted by us when the upstream sent none."""
        last = self.last
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        return {"id": last.get("id", ""), "object": "chat.completion.chunk",
                "created": last.get("created", int(time.time())), "model": self.model,
                "choices": [], "usage": {"prompt_tokens": prompt,
                                         "completion_tokens": completion,
                                         "total_tokens": prompt + completion}}

    def fail(self, error: PointsmanError) -> bytes:
        from pointsman.gateway.errors import error_payload

        return b"data: " + jsonio.dumps(error_payload(error)[1]) + b"\n\n" + DONE
