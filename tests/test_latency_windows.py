"""Latency windows: exact percentiles against numpy (memory and Redis), expiry by time and
by count with an injected clock, timeouts counted, the StateSource and the recorder."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from pointsman.latency.config import LatencyConfig, WindowConfig
from pointsman.latency.redis_window import BATCH, RedisWindows, decode, encode
from pointsman.latency.window import (
    LatencyWindows,
    MemoryWindows,
    Sample,
    deployment_key,
    model_key,
    sample_of,
    summarize,
)
from pointsman.latency.wiring import LatencyRecorder, LatencySource, build_latency
from pointsman.redis_config import RedisConfig
from pointsman.state import AttemptOutcome
from pointsman.types import LatencyStats, LiveState, RouteRequest
from redis_cluster_support import RedisAt
from redis_support import drop_prefix

REQUEST = RouteRequest.from_prompt("hi")




class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


KINDS = ["memory", "redis", "cluster"]


def make(kind: str, cfg: WindowConfig, clock: Callable[[], float],
         redis_at: RedisAt) -> LatencyWindows:
    if kind == "memory":
        return MemoryWindows(cfg, clock)
    return RedisWindows(redis_at(kind, f"test:latency:{uuid.uuid4().hex}:"), cfg,
                        refresh_s=0.0, clock=clock)


async def _close(windows: LatencyWindows) -> None:
    if isinstance(windows, RedisWindows):
        await windows.aclose()
        drop_prefix(windows.prefix)


async def _fresh(windows: LatencyWindows) -> dict[str, LatencyStats]:
    if isinstance(windows, RedisWindows):
        await windows.refresh()
    return dict(await windows.snapshot())


def outcome(total: float, *, ok: bool = True, ttft: float | None = None, tokens: int = 0,
            timed_out: bool = False, code: str | None = None, deployment: str = "dep-a",
            **meta: float) -> AttemptOutcome:
    return AttemptOutcome("gpt-4o-mini", deployment, ok, code, ttft, total, 10, tokens, 0.001,
                          timed_out=timed_out, metadata=meta)


@pytest.mark.parametrize("kind", KINDS)
def test_percentiles_match_numpy_on_random_data(kind: str, redis_at: RedisAt) -> None:
    rng = np.random.default_rng(7)
    ttft = rng.lognormal(5.5, 0.6, 500)
    total = ttft + rng.lognormal(7.0, 0.5, 500)
    speed = rng.uniform(20, 120, 500)
    clock = Clock()

    async def go() -> dict[str, LatencyStats]:
        windows = make(kind, WindowConfig(seconds=3600, max_samples=1000), clock, redis_at)
        try:
            for i in range(500):
                clock.now += 0.01
                await windows.add([model_key("m")], Sample(clock.now, float(ttft[i]),
                                                           float(total[i]), float(speed[i])))
            return await _fresh(windows)
        finally:
            await _close(windows)

    stats = asyncio.run(go())["m:m"]
    assert stats.samples == 500
    for got, values, q in [
        (stats.p50_ttft_ms, ttft, 50), (stats.p95_ttft_ms, ttft, 95),
        (stats.p99_ttft_ms, ttft, 99), (stats.p50_total_ms, total, 50),
        (stats.p95_total_ms, total, 95), (stats.p99_total_ms, total, 99),
        (stats.p50_tokens_per_s, speed, 50), (stats.p95_tokens_per_s, speed, 95),
        (stats.p99_tokens_per_s, speed, 99),
    ]:
        assert got == pytest.approx(float(np.percentile(values, q)), rel=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 101])
def test_summarize_matches_numpy_on_small_windows_with_unknown_speeds(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = np.column_stack([np.arange(n), rng.uniform(1, 500, n), rng.uniform(500, 5000, n),
                            rng.uniform(10, 90, n), rng.integers(0, 2, n)]).astype(float)
    rows[::2, 3] = np.nan  # every other sample has no tokens/s
    stats = summarize(rows)
    speeds = rows[~np.isnan(rows[:, 3]), 3]
    for got, values, q in [(stats.p50_ttft_ms, rows[:, 1], 50), (stats.p99_ttft_ms, rows[:, 1], 99),
                           (stats.p95_total_ms, rows[:, 2], 95)]:
        assert got == pytest.approx(float(np.percentile(values, q)))
    if speeds.size:
        assert stats.p95_tokens_per_s == pytest.approx(float(np.percentile(speeds, 95)))
    else:
        assert stats.p50_tokens_per_s is None
    assert stats.samples == n and stats.timeouts == int(rows[:, 4].sum())


@pytest.mark.parametrize("kind", KINDS)
def test_window_is_bounded_by_count_keeping_the_newest(kind: str, redis_at: RedisAt) -> None:
    clock = Clock()

    async def go() -> LatencyStats:
        windows = make(kind, WindowConfig(seconds=3600, max_samples=50), clock, redis_at)
        try:
            for i in range(200):
                clock.now += 0.01
                await windows.add([model_key("m")], Sample(clock.now, float(i), float(i)))
            return (await _fresh(windows))["m:m"]
        finally:
            await _close(windows)

    stats = asyncio.run(go())
    newest = np.arange(150, 200, dtype=float)
    assert stats.samples == 50
    assert stats.p50_ttft_ms == pytest.approx(float(np.percentile(newest, 50)))
    assert stats.p99_total_ms == pytest.approx(float(np.percentile(newest, 99)))


@pytest.mark.parametrize("kind", KINDS)
def test_window_expires_by_time_with_an_injected_clock(kind: str, redis_at: RedisAt) -> None:
    clock = Clock()

    async def go() -> list[dict[str, LatencyStats]]:
        windows = make(kind, WindowConfig(seconds=60, max_samples=1000), clock, redis_at)
        seen = []
        try:
            for _ in range(10):  # ten slow samples, then ten fast ones 40 s later
                await windows.add([model_key("m")], Sample(clock.now, 900.0, 900.0))
            clock.now += 40
            for _ in range(10):
                await windows.add([model_key("m")], Sample(clock.now, 100.0, 100.0))
            seen.append(await _fresh(windows))
            clock.now += 30  # the slow ones are now 70 s old
            seen.append(await _fresh(windows))
            clock.now += 61  # everything is gone
            seen.append(await _fresh(windows))
        finally:
            await _close(windows)
        return seen

    both, fast_only, empty = asyncio.run(go())
    assert both["m:m"].samples == 20 and both["m:m"].p95_ttft_ms == 900.0
    assert fast_only["m:m"].samples == 10 and fast_only["m:m"].p95_ttft_ms == 100.0
    assert empty == {}


def test_a_timeout_counts_as_at_least_its_timeout() -> None:
    timed = sample_of(outcome(4_000.0, ok=False, timed_out=True, code="upstream_timeout",
                              timeout_ms=30_000.0), 1.0)
    assert timed is not None and timed.timed_out
    assert timed.total_ms == 30_000.0 and timed.ttft_ms == 30_000.0
    assert math.isnan(timed.tokens_per_s)
    late = sample_of(outcome(31_000.0, ok=False, timed_out=True, code="upstream_timeout"), 1.0)
    assert late is not None and late.total_ms == 31_000.0
    # a fast 500 says nothing about speed: not a sample
    assert sample_of(outcome(5.0, ok=False, code="upstream_error"), 1.0) is None


def test_tokens_per_second_is_measured_after_the_first_token() -> None:
    streamed = sample_of(outcome(1_100.0, ttft=100.0, tokens=101), 1.0)
    assert streamed is not None and streamed.tokens_per_s == pytest.approx(100.0)
    whole = sample_of(outcome(2_000.0, tokens=100), 1.0)  # non-streaming: ttft = total
    assert whole is not None and whole.ttft_ms == 2_000.0
    assert whole.tokens_per_s == pytest.approx(50.0)


def test_encoding_round_trips() -> None:
    sample = Sample(1_700_000_000.123, 12.5, 250.25, 33.3, True)
    rows = decode(encode(sample) + encode(Sample(1.0, 1.0, 1.0)))
    assert rows.shape == (2, 5)
    assert tuple(rows[0]) == (1_700_000_000.123, 12.5, 250.25, 33.3, 1.0)
    assert math.isnan(rows[1, 3]) and rows[1, 4] == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_recorder_and_source_fill_live_state_with_timeouts_counted(kind: str,
                                                                  redis_at: RedisAt) -> None:
    clock = Clock()

    async def go() -> tuple[LiveState, dict[str, LatencyStats]]:
        windows = make(kind, WindowConfig(seconds=60, min_samples=3), clock, redis_at)
        recorder = LatencyRecorder(windows, clock=clock)
        source = LatencySource(windows, min_samples=3)
        try:
            for total in (100.0, 120.0, 140.0):
                await recorder.record(REQUEST, outcome(total))
            await recorder.record(REQUEST, outcome(
                2_000.0, ok=False, timed_out=True, code="upstream_timeout",
                deployment="dep-b", timeout_ms=10_000.0))
            await recorder.record(REQUEST, outcome(1.0, ok=False, code="upstream_rejected"))
            if isinstance(windows, RedisWindows):
                await windows.refresh()
            state = await source.contribute(REQUEST, LiveState.empty())
            return state, await _fresh(windows)
        finally:
            await _close(windows)

    state, raw = asyncio.run(go())
    stats = state.latency["gpt-4o-mini"]
    assert stats.samples == 4 and stats.timeouts == 1
    assert stats.p99_total_ms is not None and stats.p99_total_ms > 9_000.0
    assert raw[deployment_key("dep-a")].samples == 3
    assert raw[deployment_key("dep-b")].timeouts == 1


def test_source_leaves_models_with_too_few_samples_out() -> None:
    clock = Clock()
    windows = MemoryWindows(WindowConfig(), clock)
    source = LatencySource(windows, min_samples=5)

    async def go() -> LiveState:
        for _ in range(4):
            await windows.add([model_key("m")], Sample(clock.now, 1.0, 1.0))
        return await source.contribute(REQUEST, LiveState.empty())

    assert asyncio.run(go()).latency == {}


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_redis_snapshot_is_served_from_a_local_copy_between_refreshes(
        kind: str, redis_at: RedisAt) -> None:
    clock, mono = Clock(), Clock(0.0)
    cfg = WindowConfig(seconds=60)

    async def go() -> tuple[int, int, int, int]:
        prefix = f"test:latency:{uuid.uuid4().hex}:"
        shared = redis_at(kind, prefix)
        writer = RedisWindows(shared, cfg, refresh_s=1.0, clock=clock)
        reader = RedisWindows(shared, cfg, refresh_s=1.0, clock=clock, monotonic=mono)
        try:
            await writer.add([model_key("m")], Sample(clock.now, 1.0, 1.0))
            first = (await reader.snapshot())["m:m"].samples  # first read: waits for Redis
            await writer.add([model_key("m")], Sample(clock.now, 1.0, 1.0))
            cached = (await reader.snapshot())["m:m"].samples  # within refresh_s: local copy
            mono.now += 1.5
            stale = (await reader.snapshot())["m:m"].samples  # refreshes in the background
            await reader.settled()
            return first, cached, stale, (await reader.snapshot())["m:m"].samples
        finally:
            await writer.aclose()
            await reader.aclose()
            drop_prefix(prefix)

    assert asyncio.run(go()) == (1, 1, 1, 2)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_many_windows_are_read_in_batches(kind: str, redis_at: RedisAt) -> None:
    """More windows than one snapshot call reads: every one comes back, once."""
    clock = Clock()
    keys = [deployment_key(f"dep-{i}") for i in range(2 * BATCH + 7)]

    async def go() -> dict[str, LatencyStats]:
        windows = RedisWindows(redis_at(kind, f"test:latency:{uuid.uuid4().hex}:"),
                               WindowConfig(seconds=60), refresh_s=0.0, clock=clock)
        try:
            await windows.add(keys, Sample(clock.now, 5.0, 50.0))
            return await _fresh(windows)
        finally:
            await _close(windows)

    stats = asyncio.run(go())
    assert sorted(stats) == sorted(keys)
    assert {s.samples for s in stats.values()} == {1}


def test_redis_down_never_fails_a_request() -> None:
    async def go() -> dict[str, LatencyStats]:
        dead = RedisConfig(url="redis://127.0.0.1:1/0", prefix="x:")  # refused at once
        windows = RedisWindows(dead, WindowConfig())
        try:
            await windows.add([model_key("m")], Sample(1.0, 1.0, 1.0))
            return dict(await windows.snapshot())
        finally:
            await windows.aclose()

    assert asyncio.run(go()) == {}



def test_latency_switched_off_records_and_reports_nothing() -> None:
    parts = build_latency(LatencyConfig(enabled=False, window=WindowConfig(min_samples=1)))

    async def go() -> tuple[LiveState, dict[str, LatencyStats]]:
        await parts.recorder.record(REQUEST, outcome(100.0))
        return (await parts.source.contribute(REQUEST, LiveState.empty()),
                dict(await parts.windows.snapshot()))

    state, raw = asyncio.run(go())
    assert state.latency == {} and raw == {}
