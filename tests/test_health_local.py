"""The breakers two workers share through a file (:mod:`pointsman.health_local`): a trip by
one is seen by the other once its view is older than ``cache_s``; one probe for both;
its answer closes the breaker for both; a success on a closed breaker writes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pointsman.gateway.config import HealthConfig
from pointsman.health_local import SharedFileHealth

CFG = HealthConfig(consecutive_failures=2, cooldown_s=10, min_requests=100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pair(tmp_path: Path) -> tuple[SharedFileHealth, SharedFileHealth, Clock]:
    clock = Clock()
    path = tmp_path / "health.db"
    return (SharedFileHealth(path, CFG, cache_s=0.25, clock=clock),
            SharedFileHealth(path, CFG, cache_s=0.25, clock=clock), clock)


def test_a_trip_in_one_worker_is_seen_by_the_other(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, clock = _pair(tmp_path)
        assert await b.available("d1")  # b's view is now fresh
        await a.report("d1", False)
        assert await a.available("d1")  # one failure of two: still closed
        await a.report("d1", False)
        assert not await a.available("d1") and a.state("d1") == "open"
        assert await b.available("d1")  # b's view is younger than cache_s
        clock.now += 0.3
        assert not await b.available("d1") and b.state("d1") == "open"
        assert await b.available("d2")
    asyncio.run(run())


def test_one_probe_for_both_and_its_success_closes_for_both(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, clock = _pair(tmp_path)
        for _ in range(2):
            await a.report("d1", False)
        clock.now += 11  # past the cooldown: half-open
        assert await b.acquire("d1")  # b sends the probe
        assert not await a.acquire("d1")  # a reads the claim under the write lock
        await b.report("d1", True)
        clock.now += 0.3
        assert await a.acquire("d1") and a.state("d1") == "closed"
    asyncio.run(run())


def test_a_failed_probe_reopens_and_retry_after_blocks_both(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, clock = _pair(tmp_path)
        for _ in range(2):
            await a.report("d1", False)
        clock.now += 11
        assert await a.acquire("d1")
        await a.report("d1", False)
        clock.now += 0.3
        assert b.state("d1") == "open"
        await a.report("d2", True, retry_after=5)  # a 429's Retry-After: blocked, no failure
        clock.now += 0.3
        assert b.state("d2") == "blocked" and not await b.available("d2")
        clock.now += 5
        assert await b.available("d2")
    asyncio.run(run())


def test_successes_on_a_closed_breaker_write_nothing(tmp_path: Path) -> None:
    async def run() -> None:
        a, _, _ = _pair(tmp_path)
        for _ in range(50):
            await a.report("d1", True)
        rows = a._conn.execute("SELECT COUNT(*) FROM breakers").fetchone()[0]
        assert rows == 0
    asyncio.run(run())
