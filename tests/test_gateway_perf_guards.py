"""Guards for the gateway's speed targets that are not timings (those are printed by
benchmarks/bench_gateway.py): upstream connections are reused across calls and streams,
and building the default gateway app imports none of the heavy libraries."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pointsman.errors import StreamBrokenError, UpstreamConnectionError, UpstreamServerError
from pointsman.providers.anthropic import AnthropicProvider
from pointsman.providers.base import ChatCall, Provider
from pointsman.providers.openai_compat import OpenAICompatProvider
from pointsman.providers.rawwire import RawWire
from pointsman.providers.wire import AiohttpWire, HttpxWire, Wire
from pointsman.testing import UpstreamStub

ROUNDS = 12
USER = {"role": "user", "content": "Name three rivers in Europe."}
CLIENTS: dict[str, Callable[[], Wire]] = {"httpx": HttpxWire, "aiohttp": AiohttpWire,
                                          "raw": RawWire}
HEAVY = ("sklearn", "scipy", "matplotlib", "torch", "tokenizers", "safetensors", "pandas")


@asynccontextmanager
async def _wire(kind: str) -> AsyncIterator[Wire]:
    wire = CLIENTS[kind]()
    try:
        yield wire
    finally:
        await wire.aclose()


async def _use(provider: Provider, stream: bool) -> list[Mapping[str, Any]]:
    body = {"model": "m-pool", "messages": [USER], "max_tokens": 64}
    if not stream:
        return [(await provider.complete(ChatCall(body))).body]
    return [chunk async for chunk in provider.stream(ChatCall(body))]


def _connections_after(stub: UpstreamStub, make: type[Provider], url: str,
                       stream: bool, client_kind: str) -> int:
    async def scenario() -> None:
        async with _wire(client_kind) as client:
            provider = make("stub", url, client)  # type: ignore[call-arg]
            for _ in range(ROUNDS):
                assert await _use(provider, stream)

    stub.reset()
    asyncio.run(scenario())
    assert stub.requests("m-pool") == ROUNDS
    return stub.connections()


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_openai_streams_and_calls_reuse_one_connection(upstream: UpstreamStub,
                                                       kind: str) -> None:
    url = upstream.base_url
    assert _connections_after(upstream, OpenAICompatProvider, url, True, kind) == 1
    assert _connections_after(upstream, OpenAICompatProvider, url, False, kind) == 1


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_anthropic_streams_and_calls_reuse_one_connection(upstream: UpstreamStub,
                                                          kind: str) -> None:
    assert _connections_after(upstream, AnthropicProvider, upstream.url, True, kind) == 1
    assert _connections_after(upstream, AnthropicProvider, upstream.url, False, kind) == 1


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_a_stream_left_early_still_counts_one_connection_per_stream(
        upstream: UpstreamStub, kind: str) -> None:
    """The stub's count is per TCP connection: a closed connection shows as a new one."""
    async def scenario() -> None:
        async with _wire(kind) as client:
            provider = OpenAICompatProvider("stub", upstream.base_url, client)
            for _ in range(3):
                stream = provider.stream(ChatCall({"model": "m-cut", "messages": [USER]}))
                await anext(aiter(stream))
                await stream.aclose()

    upstream.reset()
    upstream.behave("m-cut", token_delay_ms=20, tokens=20)
    asyncio.run(scenario())
    assert upstream.connections() == 3


CHECK = f"""
import json, sys
from pointsman.config import load_config
from pointsman.gateway.app import create_app
create_app(load_config(None))
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_the_default_gateway_imports_no_heavy_library() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("kind", ["aiohttp", "raw"])
def test_wire_failures_map_like_httpx(upstream: UpstreamStub, kind: str) -> None:
    async def call(url: str, model: str, stream: bool) -> None:
        async with _wire(kind) as client:
            provider = OpenAICompatProvider("stub", url, client)
            body = {"model": model, "messages": [USER]}
            if stream:
                [_ async for _ in provider.stream(ChatCall(body))]
            else:
                await provider.complete(ChatCall(body))

    with pytest.raises(UpstreamConnectionError, match=r"cannot connect to 127\.0\.0\.1"):
        asyncio.run(call(f"http://127.0.0.1:{_closed_port()}/v1", "m-x", False))
    upstream.behave("m-cut", cut_after=2, cut_mode="reset")
    with pytest.raises(StreamBrokenError):
        asyncio.run(call(upstream.base_url, "m-cut", True))
    upstream.behave("m-500", statuses=[503])
    with pytest.raises(UpstreamServerError, match="503"):
        asyncio.run(call(upstream.base_url, "m-500", False))
