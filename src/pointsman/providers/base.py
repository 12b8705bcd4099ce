"""The Provider protocol.

Inside pointsman a chat call is an OpenAI Chat Completions body (a dict) whose
``model`` is already the upstream's model name. Adapters for other wire formats
(Anthropic Messages) translate both ways at this boundary, and translate every
upstream failure into a :class:`pointsman.errors.ProviderError` subclass.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from pointsman.errors import InputError

P = ParamSpec("P")
R = TypeVar("R")


def untranslatable_is_input(api: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A request translator whose unforeseen failures (a TypeError, KeyError ... on a
    shape the gateway's validation let through) are the caller's 400 naming the API, never
    a 500: what an adapter cannot translate is bad input for that upstream."""
    def wrap(translate: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(translate)
        def translated(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return translate(*args, **kwargs)
            except (TypeError, KeyError, ValueError, AttributeError, IndexError,
                    RecursionError) as exc:
                raise InputError(f"cannot translate the request for the {api} API: "
                                 f"{type(exc).__name__}: {exc}") from None
        return translated
    return wrap


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``first_token`` bounds the wait for the first byte of the answer/stream."""

    connect: float = 5.0
    first_token: float = 30.0
    total: float = 120.0


@dataclass(frozen=True, slots=True)
class Usage:
    """An upstream's reported token counts, as the IR counts them (see
    :mod:`pointsman.doors.base`): ``prompt_tokens`` is ALL input, its cache reads
    (``cached_tokens``) and cache writes (``cache_creation_tokens``) included;
    ``completion_tokens`` is all output, its hidden ``reasoning_tokens`` included. The
    details say how the input is priced (cache reads and writes have prices of their
    own); reasoning is priced as output and only reported."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _count(details: Any, name: str) -> int:
    value = details.get(name) if isinstance(details, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def usage_details(usage: Mapping[str, Any]) -> dict[str, int]:
    """The detail counts of IR (OpenAI Chat Completions) usage, as :class:`Usage`'s keyword
    arguments: ``prompt_tokens_details.cached_tokens`` and ``.cache_creation_tokens`` (the
    IR's extension for Anthropic's cache writes) and
    ``completion_tokens_details.reasoning_tokens``; 0 where absent or malformed."""
    prompt, completion = usage.get("prompt_tokens_details"), usage.get(
        "completion_tokens_details")
    return {"cached_tokens": _count(prompt, "cached_tokens"),
            "cache_creation_tokens": _count(prompt, "cache_creation_tokens"),
            "reasoning_tokens": _count(completion, "reasoning_tokens")}


@dataclass(frozen=True, slots=True)
class ChatCall:
    body: Mapping[str, Any]
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """An OpenAI ``chat.completion`` body, its usage and the upstream's rate-limit and
    request-id headers (``x-ratelimit-*``, ``x-request-id``; may be empty)."""

    body: Mapping[str, Any]
    usage: Usage | None
    headers: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    name: str

    async def complete(self, call: ChatCall) -> ChatResult: ...

    def stream(self, call: ChatCall) -> AsyncIterator[Mapping[str, Any]]:
        """OpenAI ``chat.completion.chunk`` dicts; the last may carry ``usage``."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BatchStreaming(Protocol):
    """A provider that can hand a stream over in batches: the chunks that arrived together
    (one network read) in one list, so the gateway writes them to the client at once."""

    def stream_batches(self, call: ChatCall) -> AsyncIterator[list[Mapping[str, Any]]]:
        """The chunks of :meth:`Provider.stream`, as non-empty lists."""
        ...
