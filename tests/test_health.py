"""Deployment health: trips on consecutive failures or error rate, cools down, half-open
probe, Retry-After blocks, and the cooling_down view routing reads."""

from __future__ import annotations

import asyncio

from pointsman.gateway.config import HealthConfig
from pointsman.health import CooldownSource, HealthRecorder, HealthyFirstChooser, MemoryHealth
from pointsman.state import AttemptOutcome
from pointsman.types import LiveState, RouteRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


CFG = HealthConfig(window_s=60, error_rate=0.5, min_requests=4, consecutive_failures=3,
                   cooldown_s=10)


def test_consecutive_failures_open_then_half_open_probe_closes() -> None:
    clock = Clock()
    health = MemoryHealth(CFG, clock)

    async def go() -> None:
        for _ in range(2):
            await health.report("a", False)
        assert await health.available("a")
        await health.report("a", False)
        assert health.state("a") == "open" and not await health.available("a")
        clock.now += 10
        assert health.state("a") == "half_open"
        assert await health.acquire("a")          # the probe goes through
        assert not await health.acquire("a")      # nobody else while it is in flight
        await health.report("a", True)
        assert health.state("a") == "closed" and await health.acquire("a")
    run(go())


def test_failed_probe_reopens() -> None:
    clock = Clock()
    health = MemoryHealth(CFG, clock)

    async def go() -> None:
        for _ in range(3):
            await health.report("a", False)
        clock.now += 10
        assert await health.acquire("a")
        await health.report("a", False)
        assert health.state("a") == "open"
        clock.now += 9.9
        assert not await health.available("a")
        clock.now += 0.2
        assert await health.available("a")
    run(go())


def test_error_rate_over_the_window_trips() -> None:
    clock = Clock()
    health = MemoryHealth(CFG, clock)

    async def go() -> None:
        for ok in (True, False, True, False):  # 50 % of 4, never 3 in a row
            await health.report("a", ok)
        assert health.state("a") == "open"
        other = MemoryHealth(CFG, clock)
        for ok in (False, True, False):
            clock.now += 40
            await other.report("b", ok)
        await other.report("b", True)  # the first failure left the 60 s window
        assert other.state("b") == "closed"
    run(go())


def test_retry_after_blocks_without_counting_as_a_failure() -> None:
    clock = Clock()
    health = MemoryHealth(CFG, clock)
    recorder = HealthRecorder(health)
    request = RouteRequest.from_prompt("hi")

    async def go() -> None:
        outcome = AttemptOutcome("m", "m@x", False, "upstream_rate_limited", None, 1.0, 0, 0,
                                 0.0, metadata={"retry_after": 2.0})
        await recorder.record(request, outcome)
        assert health.state("m@x") == "blocked"
        clock.now += 2.0
        assert health.state("m@x") == "closed"
        rejected = AttemptOutcome("m", "m@x", False, "upstream_rejected", None, 1.0, 0, 0, 0.0)
        for _ in range(5):
            await recorder.record(request, rejected)
        assert health.state("m@x") == "closed"  # the caller's 4xx says nothing about health
    run(go())


def test_repeated_429s_never_trip_the_breaker() -> None:
    """More 429s in a row than ``consecutive_failures`` (with and without Retry-After): the
    deployment is busy, not broken; it is blocked for the Retry-After, never cooled down."""
    clock = Clock()
    health = MemoryHealth(CFG, clock)
    recorder = HealthRecorder(health)
    request = RouteRequest.from_prompt("hi")

    async def go() -> None:
        for wait in (1.0, None, 1.0, None, 1.0):
            meta = {"retry_after": wait} if wait is not None else {}
            await recorder.record(request, AttemptOutcome(
                "m", "m@x", False, "upstream_rate_limited", None, 1.0, 0, 0, 0.0,
                metadata=meta))
        assert health.state("m@x") == "blocked"
        clock.now += 1.0
        assert health.state("m@x") == "closed"
    run(go())


def test_model_cools_down_only_when_every_deployment_does() -> None:
    clock = Clock()
    health = MemoryHealth(CFG, clock)
    source = CooldownSource(health, {"gpt-4o-mini": ["mini@a", "mini@b"], "haiku": ["h@a"]})
    chooser = HealthyFirstChooser(health)
    request = RouteRequest.from_prompt("hi")

    async def go() -> None:
        for _ in range(3):
            await health.report("mini@a", False)
        state = await source.contribute(request, LiveState.empty())
        assert state.cooling_down == frozenset()
        assert await chooser.order("gpt-4o-mini", ["mini@a", "mini@b"]) == ["mini@b"]
        for _ in range(3):
            await health.report("mini@b", False)
        state = await source.contribute(request, LiveState.empty())
        assert state.cooling_down == frozenset({"gpt-4o-mini"})
    run(go())
