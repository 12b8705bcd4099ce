"""Per-request cost: estimated before the call (the router's ``Decision``), actual after it.

Actual cost comes from the provider's reported usage and the catalog's prices. A stream
whose provider sent no usage chunk is costed from counted tokens: the prompt's estimate
and the streamed text counted with :func:`pointsman.tokens.estimate_text_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pointsman.providers.base import Usage
from pointsman.tokens import estimate_text_tokens
from pointsman.types import ModelSpec


@dataclass(frozen=True, slots=True)
class Cost:
    prompt_tokens: int
    completion_tokens: int
    usd: float
    reported: bool  # True: from provider usage; False: from counted tokens


def cost_of(spec: ModelSpec, usage: Usage) -> Cost:
    return Cost(usage.prompt_tokens, usage.completion_tokens,
                spec.cost(usage.prompt_tokens, usage.completion_tokens), True)


def baseline_cost(candidates: Iterable[ModelSpec], prompt_tokens: int,
                  completion_tokens: int) -> float:
    """What the same tokens would have cost on the most expensive candidate: the request
    log's ``baseline_cost_usd``, so savings ("always using the most expensive candidate")
    compare like with like (actual tokens on both sides; a request that spent nothing
    saved nothing)."""
    return max((s.cost(prompt_tokens, completion_tokens) for s in candidates), default=0.0)


def usage_from_chunk(chunk: Mapping[str, Any]) -> Usage | None:
    """The ``usage`` of an OpenAI chunk or completion body, if it carries one."""
    usage = chunk.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def chunk_text(chunk: Mapping[str, Any]) -> str:
    """The text a chat.completion.chunk adds (content and tool-call arguments)."""
    parts: list[str] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            parts.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.extend(str(function.get(k) or "") for k in ("name", "arguments"))
    return "".join(parts)


_PLAIN_DELTA = frozenset({"role", "content", "refusal"})  # no tool calls: only content counts


class StreamMeter:
    """Counts a stream as it passes; :meth:`cost` prefers the provider's usage chunk."""

    def __init__(self, spec: ModelSpec, prompt_tokens_estimate: int) -> None:
        self.spec = spec
        self.prompt_estimate = prompt_tokens_estimate
        self.usage: Usage | None = None
        self._parts: list[str] = []

    def feed(self, chunk: Mapping[str, Any]) -> None:
        if chunk.get("usage") is not None:
            self.usage = usage_from_chunk(chunk) or self.usage
        choices = chunk.get("choices")
        if not choices:
            return
        delta = choices[0].get("delta") if len(choices) == 1 else None
        if delta is not None and delta.keys() <= _PLAIN_DELTA:  # the common case, inline
            content = delta.get("content")
            if content.__class__ is str and content:
                self._parts.append(content)
            return
        self._parts.append(chunk_text(chunk))

    def feed_all(self, chunks: Iterable[Mapping[str, Any]]) -> None:
        for chunk in chunks:
            self.feed(chunk)

    def cost(self) -> Cost:
        if self.usage is not None:
            return cost_of(self.spec, self.usage)
        completion = estimate_text_tokens("".join(self._parts))
        return Cost(self.prompt_estimate, completion,
                    self.spec.cost(self.prompt_estimate, completion), False)
