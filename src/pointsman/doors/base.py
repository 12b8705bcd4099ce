"""The contract between a front door and the request lifecycle.

**The internal representation (IR)** of a request is an OpenAI Chat Completions body
(a dict), as the providers already take it. A door's :meth:`Door.to_chat` builds it from
the caller's body; the lifecycle routes, reserves, calls and records it; the door's
:meth:`Door.answer` and :class:`StreamEncoder` turn the IR answer (a ``chat.completion``
body, or ``chat.completion.chunk`` batches) back into the caller's format.

Extensions to the Chat Completions shape, for what other formats carry and Chat
Completions has no field for (every adapter that speaks another format knows them; the
OpenAI-compatible adapter strips them, logging what it dropped):

    body ``_pointsman``        door-private facts, never sent upstream as such:
                               ``{"door": "messages", "anthropic_beta": "...",
                               "anthropic_version": "...", "ext": True}``; ``ext`` says the
                               body uses the extensions below (so adapters that must strip
                               them look only then)
    body ``thinking``          Anthropic's thinking config (``{"type": "enabled",
                               "budget_tokens": N}`` / ``{"type": "adaptive"}``)
    body ``top_k``             Anthropic's top_k
    message ``thinking_blocks``  an assistant turn's thinking, as Anthropic blocks
                               (``{"type": "thinking", "thinking", "signature"}`` or
                               ``{"type": "redacted_thinking", "data"}``), replayed first
    content part ``cache_control``, tool ``cache_control``, system content parts
                               Anthropic prompt-cache breakpoints
    answer message ``reasoning_content`` (text) and ``thinking_blocks`` (as above);
    stream delta ``reasoning_content`` (a thinking delta) and ``thinking_blocks``
                               (``[{"type": "thinking", "signature": "..."}]``: a
                               signature delta)

Usage in the IR follows OpenAI: ``prompt_tokens`` (all input, cached included),
``completion_tokens`` (reasoning included), ``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``, and the extension
``prompt_tokens_details.cache_creation_tokens`` (Anthropic's cache writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pointsman.errors import PointsmanError

DoorName = Literal["chat", "messages", "responses"]
Chunk = Mapping[str, Any]
PRIVATE = "_pointsman"  # the IR body's door-private key (see the module docstring)


@dataclass(frozen=True, slots=True)
class StreamUsage:
    """A finished stream's token counts, as the lifecycle costed them."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What a door needs to shape an answer: the model that answered (a catalog name),
    the request's id (``x-pointsman-request-id``; doors whose answers carry an id use it
    or derive theirs from it), the caller's original body, and the prompt-token estimate
    (for events that must carry input tokens before the upstream's usage is known).
    ``routed``: the caller asked for a name that pointsman routes (``auto``, an alias,
    ``router-*``) rather than a catalog model."""

    model: str
    request_id: str
    request: Mapping[str, Any]
    input_tokens_estimate: int = 0
    routed: bool = False

    @property
    def shown_model(self) -> str:
        """The name to answer with where a client reuses it for its next request (Claude
        Code resumes a session with the model its last answer named): the routed name the
        caller asked for, so the next turn is routed again; else the model that answered
        (``x-pointsman-model`` always names that one)."""
        requested = self.request.get("model")
        return requested if self.routed and isinstance(requested, str) else self.model


class StreamEncoder(Protocol):
    """Turns the IR stream (``chat.completion.chunk`` batches, first token included) into
    the caller's server-sent events. Stateful: one per stream."""

    def encode(self, batch: Sequence[Chunk]) -> bytes:
        """The SSE bytes for these chunks (may be empty: nothing to show yet)."""
        ...

    def close(self, usage: StreamUsage) -> bytes:
        """The events that end a stream that finished well (``data: [DONE]``,
        ``message_delta`` + ``message_stop``, ``response.completed``)."""
        ...

    def fail(self, error: PointsmanError) -> bytes:
        """The events that end a stream that broke after its first token, in the caller's
        error shape."""
        ...


class Door(Protocol):
    """One front door (a wire format a client speaks)."""

    name: DoorName

    def to_chat(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """The caller's body as the IR (``model``, ``messages``, ``stream`` ...).
        ``headers``: the request's headers, names lower-case. Raises
        :class:`~pointsman.errors.InputError` naming the field for anything invalid:
        never a 500 and never an upstream call for bad input."""
        ...

    def answer(self, completion: Mapping[str, Any], ctx: AnswerContext) -> dict[str, Any]:
        """An IR ``chat.completion`` body as the caller's answer body."""
        ...

    def encoder(self, ctx: AnswerContext) -> StreamEncoder:
        """A fresh encoder for one stream."""
        ...

    def error_body(self, error: PointsmanError, status: int) -> dict[str, Any]:
        """The caller's error shape for ``error`` (its HTTP ``status`` is decided in one
        place, :func:`pointsman.errors.http_status`)."""
        ...
