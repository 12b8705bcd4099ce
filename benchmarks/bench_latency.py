"""Cost per request of the latency windows and the bandit, in memory and in Redis, and of
the Redis-shared deployment health.

For each operation: µs per call, p50 and p99 over many calls (one call at a time, so the
figures are latencies, not throughput). Redis runs at 127.0.0.1:6379 (keys under a unique
prefix, deleted at the end). Prints figures; run:

    taskset -c 0 .venv/bin/python benchmarks/bench_latency.py
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import numpy as np
from redis.asyncio import Redis

from pointsman import RouteRequest, load_config
from pointsman.gateway.config import HealthConfig
from pointsman.health_redis import RedisHealth
from pointsman.latency.bandit import BanditChooser, MemoryBandit
from pointsman.latency.config import BanditConfig, WindowConfig
from pointsman.latency.redis_bandit import RedisBandit
from pointsman.latency.redis_window import RedisWindows
from pointsman.latency.window import LatencyWindows, MemoryWindows, Sample, model_key
from pointsman.latency.wiring import LatencyRecorder, LatencySource
from pointsman.redis_config import RedisConfig
from pointsman.router import resolve_catalog
from pointsman.state import AttemptOutcome
from pointsman.types import LiveState

REDIS = "redis://127.0.0.1:6379/0"
N = 3000
REQUEST = RouteRequest.from_prompt("hi")
MODELS = [m.name for m in resolve_catalog(load_config())]
DEPLOYMENTS = ["east", "west", "north"]
_EMPTY = LiveState.empty()


async def timed(label: str, op: Callable[[int], Awaitable[object]], n: int = N) -> None:
    costs = np.empty(n)
    for i in range(n):
        start = time.perf_counter_ns()
        await op(i)
        costs[i] = (time.perf_counter_ns() - start) / 1000
    print(f"  {label:<58} p50 {np.percentile(costs, 50):8.1f} µs   "
          f"p99 {np.percentile(costs, 99):8.1f} µs")


def outcome(i: int) -> AttemptOutcome:
    model = MODELS[i % len(MODELS)]
    return AttemptOutcome(model, f"{model}@{DEPLOYMENTS[i % 3]}", True, None,
                          100.0 + i % 50, 900.0 + i % 300, 100, 200, 0.001)


async def fill(windows: LatencyWindows, per_model: int) -> None:
    now = time.time()
    for model in MODELS:
        for j in range(per_model):
            await windows.add([model_key(model)], Sample(now, 100.0 + j, 900.0 + j, 50.0))


async def windows_bench(kind: str, windows: LatencyWindows) -> None:
    print(f"latency windows ({kind}, {len(MODELS)} models, 1000 samples each):")
    await fill(windows, 1000)
    recorder = LatencyRecorder(windows)
    source = LatencySource(windows)
    await timed("record one attempt (model + deployment window)",
                lambda i: recorder.record(REQUEST, outcome(i)))
    if isinstance(windows, RedisWindows):
        await timed("refresh: read + summarise every window (1 Lua call)",
                    lambda i: windows.refresh(), 200)
        await windows.refresh()
    elif isinstance(windows, MemoryWindows):
        windows.refresh_s = 0.0
        await timed("write + snapshot, refresh_s=0 (re-summarise 1 window)",
                    lambda i: _write_then_read(windows, i), 1000)
        windows.refresh_s = 1.0
        await timed("write + snapshot, refresh_s=1 (default)",
                    lambda i: _write_then_read(windows, i), 1000)
    await timed("StateSource.contribute (cached snapshot, per request)",
                lambda i: source.contribute(REQUEST, _EMPTY))


async def _write_then_read(windows: LatencyWindows, i: int) -> None:
    await windows.add([model_key(MODELS[0])], Sample(time.time(), 1.0 + i, 2.0 + i))
    await windows.snapshot()


async def bandit_bench(kind: str, bandit: MemoryBandit | RedisBandit) -> None:
    print(f"bandit ({kind}, {len(DEPLOYMENTS)} deployments per model):")
    chooser = BanditChooser(bandit, BanditConfig())
    await timed("record one pull (discount every arm + add)",
                lambda i: bandit.update("gpt-4o", DEPLOYMENTS[i % 3], 0.7))
    if isinstance(bandit, RedisBandit):
        bandit.cache_s = 0.0
        await timed("order deployments, cache_s=0 (HGETALL per call)",
                    lambda i: chooser.order("gpt-4o", DEPLOYMENTS))
        bandit.cache_s = 3600.0
    await timed("order deployments (local copy)",
                lambda i: chooser.order("gpt-4o", DEPLOYMENTS))


async def health_bench(prefix: str) -> None:
    print("deployment health (redis, shared breaker):")
    health = RedisHealth(RedisConfig(url=REDIS, prefix=prefix + "health:"), HealthConfig(),
                         cache_s=0.25)
    try:
        await timed("report one outcome (Lua: window + breaker)",
                    lambda i: health.report(DEPLOYMENTS[i % 3], True))
        await timed("acquire before a call (Lua: probe slot)",
                    lambda i: health.acquire(DEPLOYMENTS[i % 3]))
        await timed("available (local copy, per deployment per request)",
                    lambda i: health.available(DEPLOYMENTS[i % 3]))
    finally:
        await health.aclose()


async def cleanup(prefix: str) -> None:
    client = Redis.from_url(REDIS)
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def main() -> None:
    cfg = WindowConfig(seconds=3600, max_samples=1000)
    await windows_bench("memory", MemoryWindows(cfg))
    prefix = f"bench:latency:{uuid.uuid4().hex}:"
    redis_windows = RedisWindows(RedisConfig(url=REDIS, prefix=prefix), cfg, refresh_s=3600.0)
    try:
        await windows_bench("redis", redis_windows)
    finally:
        await redis_windows.aclose()
    await bandit_bench("memory", MemoryBandit(0.99))
    redis_bandit = RedisBandit(RedisConfig(url=REDIS, prefix=prefix), 0.99, cache_s=0.25)
    try:
        await bandit_bench("redis", redis_bandit)
    finally:
        await redis_bandit.aclose()
    try:
        await health_bench(prefix)
    finally:
        await cleanup(prefix)


if __name__ == "__main__":
    asyncio.run(main())
