"""Adapter overhead: the OpenAI and Anthropic adapters against raw httpx, on the local stub.

Run: .venv/bin/python benchmarks/bench_providers.py [--iterations N]

Each call goes over real HTTP on 127.0.0.1 to :class:`pointsman.testing.UpstreamStub`
(no delay). "raw" is one ``httpx.AsyncClient.post`` plus ``json()``; the adapters add the
body translation, deadlines, SSE parsing and error mapping. The difference is what the
adapter layer costs per call (the stub's own time is in both).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from pointsman.providers.anthropic import AnthropicProvider
from pointsman.providers.base import ChatCall
from pointsman.providers.openai_compat import OpenAICompatProvider
from pointsman.testing import UpstreamStub

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello in five words."}]}


async def timed(name: str, once: Callable[[], Awaitable[object]], iterations: int) -> None:
    for _ in range(20):  # warm the pool
        await once()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{name:<28} p50 {statistics.median(samples):8.0f} µs   p99 {p99:8.0f} µs")


async def drain(provider: OpenAICompatProvider | AnthropicProvider) -> None:
    async for _ in provider.stream(ChatCall({**BODY, "stream": True})):
        pass


async def run(stub: UpstreamStub, iterations: int) -> None:
    async with httpx.AsyncClient() as client:
        openai = OpenAICompatProvider("openai", stub.base_url, client, api_key="k")
        anthropic = AnthropicProvider("anthropic", stub.base_url, client, api_key="k")
        url = f"{stub.base_url}/chat/completions"

        async def raw() -> object:
            return (await client.post(url, json=BODY)).json()

        await timed("raw httpx, non-streaming", raw, iterations)
        await timed("openai adapter, complete", lambda: openai.complete(ChatCall(BODY)),
                    iterations)
        await timed("openai adapter, stream", lambda: drain(openai), iterations)
        await timed("anthropic adapter, complete", lambda: anthropic.complete(ChatCall(BODY)),
                    iterations)
        await timed("anthropic adapter, stream", lambda: drain(anthropic), iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    with UpstreamStub() as stub:
        print(f"stub started in {(time.perf_counter() - started) * 1000:.0f} ms")
        asyncio.run(run(stub, args.iterations))
        stopping = time.perf_counter()
    print(f"stub stopped in {(time.perf_counter() - stopping) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
