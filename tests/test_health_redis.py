"""The Redis-shared HealthStore: the same breaker as in memory (trip on consecutive
failures or error rate, cooldown, one half-open probe across replicas, Retry-After),
shared by two replicas; fails open when Redis is down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from redis.crc import key_slot

from pointsman.gateway.config import HealthConfig
from pointsman.health import CooldownSource, HealthStore, MemoryHealth
from pointsman.health_redis import RedisHealth
from pointsman.redis_config import RedisConfig
from pointsman.types import LiveState, RouteRequest
from redis_cluster_support import RedisAt
from redis_support import drop_prefix

KINDS = ["memory", "redis", "cluster"]
CFG = HealthConfig(window_s=60, error_rate=0.5, min_requests=4, consecutive_failures=3,
                   cooldown_s=10)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now




Scenario = Callable[[Callable[[], HealthStore], Clock], Awaitable[None]]


def run(kind: str, scenario: Scenario, redis_at: RedisAt) -> None:
    """``kind``: memory, redis (the shared single Redis) or cluster (the local cluster)."""
    clock = Clock()
    prefix = f"test:health:{uuid.uuid4().hex}:"
    made: list[RedisHealth] = []

    def make() -> HealthStore:
        if kind == "memory":
            return MemoryHealth(CFG, clock)
        store = RedisHealth(redis_at(kind, prefix), CFG, cache_s=0.0, clock=clock)
        made.append(store)
        return store

    async def go() -> None:
        try:
            await scenario(make, clock)
        finally:
            for store in made:
                await store.aclose()

    try:
        asyncio.run(go())
    finally:
        drop_prefix(prefix)


async def state(store: HealthStore, deployment: str) -> str:
    if isinstance(store, RedisHealth):
        return await store.state(deployment)
    assert isinstance(store, MemoryHealth)
    return store.state(deployment)


@pytest.mark.parametrize("kind", KINDS)
def test_consecutive_failures_open_then_one_probe_closes(kind: str, redis_at: RedisAt) -> None:
    async def scenario(make: Callable[[], HealthStore], clock: Clock) -> None:
        one = make()
        two = make() if kind != "memory" else one  # a second replica sharing the breaker
        for _ in range(2):
            await one.report("a", False)
        assert await two.available("a")
        await one.report("a", False)
        assert await state(two, "a") == "open" and not await two.available("a")
        clock.now += 10
        assert await state(two, "a") == "half_open"
        assert await two.acquire("a")  # the probe goes through on one replica
        assert not await one.acquire("a")  # nobody else, on any replica, while in flight
        await two.report("a", True)
        assert await state(one, "a") == "closed" and await one.acquire("a")
    run(kind, scenario, redis_at)


@pytest.mark.parametrize("kind", KINDS)
def test_failed_probe_reopens_for_the_cooldown(kind: str, redis_at: RedisAt) -> None:
    async def scenario(make: Callable[[], HealthStore], clock: Clock) -> None:
        health = make()
        for _ in range(3):
            await health.report("a", False)
        clock.now += 10
        assert await health.acquire("a")
        await health.report("a", False)
        assert await state(health, "a") == "open"
        clock.now += 9.9
        assert not await health.available("a")
        clock.now += 0.2
        assert await health.available("a")
    run(kind, scenario, redis_at)


@pytest.mark.parametrize("kind", KINDS)
def test_error_rate_over_the_window_trips(kind: str, redis_at: RedisAt) -> None:
    async def scenario(make: Callable[[], HealthStore], clock: Clock) -> None:
        health = make()
        for ok in (True, False, True, False):  # 50 % of 4, never 3 in a row
            await health.report("a", ok)
        assert await state(health, "a") == "open"
        for ok in (False, True, False):
            clock.now += 40
            await health.report("b", ok)
        await health.report("b", True)  # the first failure left the 60 s window
        assert await state(health, "b") == "closed"
    run(kind, scenario, redis_at)


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_blocks_without_counting_as_a_failure(kind: str, redis_at: RedisAt) -> None:
    async def scenario(make: Callable[[], HealthStore], clock: Clock) -> None:
        health = make()
        await health.report("a", True, retry_after=2.0)
        assert await state(health, "a") == "blocked" and not await health.acquire("a")
        clock.now += 2.0
        assert await state(health, "a") == "closed" and await health.acquire("a")
    run(kind, scenario, redis_at)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_cooldown_view_reads_the_shared_breaker(kind: str, redis_at: RedisAt) -> None:
    async def scenario(make: Callable[[], HealthStore], clock: Clock) -> None:
        writer, reader = make(), make()
        source = CooldownSource(reader, {"gpt-4o-mini": ["mini@a", "mini@b"]})
        request = RouteRequest.from_prompt("hi")
        for name in ("mini@a", "mini@b"):
            for _ in range(3):
                await writer.report(name, False)
        cooled = await source.contribute(request, LiveState.empty())
        assert cooled.cooling_down == frozenset({"gpt-4o-mini"})
    run(kind, scenario, redis_at)


def test_a_dead_redis_fails_open() -> None:
    async def go() -> tuple[bool, bool]:
        dead = RedisConfig(url="redis://127.0.0.1:1/0", prefix="x:")  # refused at once
        health = RedisHealth(dead, CFG)
        try:
            await health.report("a", False)
            return await health.available("a"), await health.acquire("a")
        finally:
            await health.aclose()

    assert asyncio.run(go()) == (True, True)


def test_a_deployments_three_keys_share_one_hash_slot() -> None:
    """What lets the report script run on Redis Cluster, whatever the deployment's name."""
    async def go() -> list[set[int]]:
        health = RedisHealth(RedisConfig(prefix="p:"), CFG)  # nothing connects
        try:
            return [{key_slot(key.encode()) for key in health.keys_of(name)}
                    for name in ["gpt-4o-mini@azure", "}x", "{y}", "a{", "é"]]
        finally:
            await health.aclose()

    assert [len(slots) for slots in asyncio.run(go())] == [1] * 5
