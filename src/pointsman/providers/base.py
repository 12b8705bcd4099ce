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
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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
