"""Per-request cost: estimated before the call (the router's ``Decision``), actual after it.

Actual cost comes from the provider's reported usage and the catalog's prices, as the
invoice counts it: prompt-cache reads and writes at the catalog's cache prices, the rest
of the input at the input price, all output (reasoning included) at the output price
(:meth:`pointsman.types.ModelSpec.cost`). It is rounded to the nanodollar, the spend
ledger's unit, so the ledger, the request log and the ``x-pointsman-cost-usd`` header say
the same amount, without float noise. A stream whose provider sent no usage chunk is
costed from counted tokens: the prompt's estimate and the streamed text counted with
:func:`pointsman.tokens.estimate_text_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pointsman.budget.ledger import to_nanos, to_usd
from pointsman.providers.base import Usage, usage_details
from pointsman.tokens import estimate_text_tokens
from pointsman.types import ModelSpec


@dataclass(frozen=True, slots=True)
class Cost:
    """A request's tokens and what they cost. The token counts are :class:`Usage`'s
    (``prompt_tokens`` all input, the cache's share included; ``completion_tokens`` all
    output, reasoning included); ``usd`` is whole nanodollars."""

    prompt_tokens: int
    completion_tokens: int
    usd: float
    reported: bool  # True: from provider usage; False: from counted tokens
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


def nano_usd(usd: float) -> float:
    """``usd`` rounded to the nanodollar (the ledger's unit, see
    :func:`pointsman.budget.ledger.to_nanos`)."""
    return to_usd(to_nanos(usd))


def cost_of(spec: ModelSpec, usage: Usage) -> Cost:
    """The exact cost of reported usage: (prompt - cached - cache writes) x input price +
    cached x cache-read price + cache writes x cache-write price + completion x output
    price, to the nanodollar."""
    usd = spec.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                    usage.cache_creation_tokens)
    return Cost(usage.prompt_tokens, usage.completion_tokens, nano_usd(usd), True,
                usage.cached_tokens, usage.cache_creation_tokens, usage.reasoning_tokens)


def counted_cost(spec: ModelSpec, prompt_tokens: int, completion_tokens: int) -> Cost:
    """The cost of counted tokens (no usage was reported: nothing is known of a cache)."""
    return Cost(prompt_tokens, completion_tokens,
                nano_usd(spec.cost(prompt_tokens, completion_tokens)), False)


def baseline_cost(candidates: Iterable[ModelSpec], prompt_tokens: int,
                  completion_tokens: int, cached_tokens: int = 0,
                  cache_creation_tokens: int = 0) -> float:
    """What the same tokens would have cost on the most expensive candidate: the request
    log's ``baseline_cost_usd``, so savings ("always using the most expensive candidate")
    compare like with like (actual tokens on both sides, the cache's share at each
    candidate's cache prices; a request that spent nothing saved nothing)."""
    return max((s.cost(prompt_tokens, completion_tokens, cached_tokens,
                       cache_creation_tokens) for s in candidates), default=0.0)


def usage_from_chunk(chunk: Mapping[str, Any]) -> Usage | None:
    """The ``usage`` of an OpenAI chunk or completion body, if it carries one."""
    usage = chunk.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    if "prompt_tokens_details" not in usage and "completion_tokens_details" not in usage:
        return Usage(prompt, completion)  # the common case of a plain upstream
    return Usage(prompt, completion, **usage_details(usage))


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

    def text(self) -> str:
        """The streamed answer's text so far (judged samples read it)."""
        return "".join(self._parts)

    def cost(self) -> Cost:
        if self.usage is not None:
            return cost_of(self.spec, self.usage)
        completion = estimate_text_tokens("".join(self._parts))
        return counted_cost(self.spec, self.prompt_estimate, completion)
