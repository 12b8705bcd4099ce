"""Adapter overhead on each upstream wire (httpx, aiohttp), against the local stub.

Run: .venv/bin/python benchmarks/bench_providers.py [--iterations N]

Each call goes over real HTTP on 127.0.0.1 to :class:`pointsman.testing.UpstreamStub`
(no delay; it runs in a thread of this process). For each wire
(:mod:`pointsman.providers.wire`) and adapter it prints the wall p50 / p99 of one call at a
time and the CPU time of the calling thread per call (the stub's own CPU is in another
thread and not counted), one at a time and 16 at once. "raw" is the wire alone (one POST,
body read, no adapter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

from pointsman.providers.anthropic import AnthropicProvider
from pointsman.providers.base import ChatCall, Timeouts
from pointsman.providers.openai_compat import OpenAICompatProvider
from pointsman.providers.wire import AiohttpWire, HttpxWire, Wire
from pointsman.testing import UpstreamStub

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello in five words."}]}


Once = Callable[[], Awaitable[object]]


async def timed(name: str, once: Once, iterations: int) -> None:
    for _ in range(20):  # warm the pool
        await once()
    samples = []
    cpu = time.thread_time()
    for _ in range(iterations):
        start = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - start) * 1e6)
    cpu_one = (time.thread_time() - cpu) / iterations * 1e6
    cpu = time.thread_time()
    await asyncio.gather(*(_repeat(once, iterations // 16) for _ in range(16)))
    cpu_16 = (time.thread_time() - cpu) / (iterations // 16 * 16) * 1e6
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{name:<36} p50 {statistics.median(samples):6.0f} µs  p99 {p99:6.0f} µs | "
          f"CPU per call {cpu_one:5.0f} µs (c=1) {cpu_16:5.0f} µs (c=16)")


async def _repeat(once: Once, times: int) -> None:
    for _ in range(times):
        await once()


async def drain(provider: OpenAICompatProvider | AnthropicProvider) -> None:
    async for _ in provider.stream(ChatCall({**BODY, "stream": True})):
        pass


WIRES: dict[str, Callable[[], Wire]] = {"httpx": HttpxWire, "aiohttp": AiohttpWire}


async def run_wire(stub: UpstreamStub, kind: str, iterations: int) -> None:
    wire = WIRES[kind]()
    try:
        openai = OpenAICompatProvider("openai", stub.base_url, wire, api_key="k")
        anthropic = AnthropicProvider("anthropic", stub.base_url, wire, api_key="k")
        url = f"{stub.base_url}/chat/completions"
        payload = json.dumps(BODY).encode()
        headers = {"content-type": "application/json"}

        async def raw() -> object:
            response = await wire.post(url, payload, headers, Timeouts())
            try:
                return await response.read()
            finally:
                await response.aclose()

        await timed(f"{kind}: raw POST", raw, iterations)
        await timed(f"{kind}: openai adapter, complete",
                    lambda: openai.complete(ChatCall(BODY)), iterations)
        await timed(f"{kind}: openai adapter, stream", lambda: drain(openai), iterations)
        await timed(f"{kind}: anthropic adapter, complete",
                    lambda: anthropic.complete(ChatCall(BODY)), iterations)
        await timed(f"{kind}: anthropic adapter, stream", lambda: drain(anthropic), iterations)
    finally:
        await wire.aclose()


async def run(stub: UpstreamStub, iterations: int) -> None:
    for kind in WIRES:
        await run_wire(stub, kind, iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=800)
    args = parser.parse_args()
    started = time.perf_counter()
    with UpstreamStub() as stub:
        print(f"stub started in {(time.perf_counter() - started) * 1000:.0f} ms")
        asyncio.run(run(stub, args.iterations))
        stopping = time.perf_counter()
    print(f"stub stopped in {(time.perf_counter() - stopping) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
