"""Running an adapter against the local stub in a test: build it, use it, close it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pointsman.providers.base import ChatCall, Provider

T = TypeVar("T")


def run_with(make: Callable[[], Provider], use: Callable[[Provider], Awaitable[T]]) -> T:
    """``use(provider)`` in a fresh event loop; the provider is closed afterwards."""
    async def scenario() -> T:
        provider = make()
        try:
            return await use(provider)
        finally:
            await provider.aclose()
    return asyncio.run(scenario())


async def collect(provider: Provider, call: ChatCall,
                  into: list[Mapping[str, Any]] | None = None) -> list[Mapping[str, Any]]:
    """Every chunk of a stream (appended to ``into`` as they come, when given)."""
    chunks = [] if into is None else into
    async for chunk in provider.stream(call):
        chunks.append(chunk)
    return chunks
