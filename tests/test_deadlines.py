"""The watchdog (pointsman.deadlines): limits on one repeating timer, fired at most a tick
late, a caller's cancellation left alone, nothing ticking when nothing is watched."""

from __future__ import annotations

import asyncio

import pytest

from pointsman.deadlines import TICK_S, limited, watchdog


async def forever() -> None:
    await asyncio.Event().wait()


def test_a_passed_limit_is_a_timeout_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await limited(forever(), started + 0.1)
        assert loop.time() - started >= 0.1  # never early (late by at most a tick)
    asyncio.run(main())


def test_an_answer_in_time_is_returned_and_the_timer_stops() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert await limited(answer(), loop.time() + 30.0) == 42
        dog = watchdog()
        assert dog._timer is not None  # armed by the call, until its next tick
        await asyncio.sleep(TICK_S * 3)
        assert dog._timer is None and not dog._watched
    asyncio.run(main())


def test_a_callers_cancellation_stays_a_cancellation() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(limited(forever(), loop.time() + 30.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not watchdog()._watched
    asyncio.run(main())


def test_nested_limits_each_raise_their_own() -> None:
    """The executor's first-token limit around an adapter's own: the one that passed is
    the one that raises; the other sees a plain cancellation."""
    async def inner(when: float) -> None:
        try:
            await limited(forever(), when)
        except TimeoutError:
            raise RuntimeError("inner") from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):  # the outer limit passes first
            await limited(inner(loop.time() + 30.0), loop.time() + 0.05)
        with pytest.raises(RuntimeError, match="inner"):  # the inner one does
            await limited(inner(loop.time() + 0.05), loop.time() + 30.0)
    asyncio.run(main())


def test_many_waits_share_one_timer() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(limited(forever(), loop.time() + 0.05 * (i % 3 + 1)) for i in range(30)),
            return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results)
        assert not watchdog()._watched
    asyncio.run(main())


def test_a_cancellation_the_awaitable_swallows_is_taken_back() -> None:
    """An awaitable that catches the watchdog's cancellation and returns leaves its task
    with no cancellation pending (a later ``asyncio.timeout`` still works)."""
    async def stubborn() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "kept going"
        return "woken"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert await limited(stubborn(), loop.time() + 0.05) == "kept going"
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await asyncio.Event().wait()
    asyncio.run(main())
