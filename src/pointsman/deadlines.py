"""Time limits for many waits on one timer.

An ``asyncio.timeout`` starts and stops a loop timer of its own: 5-8 µs under uvloop on
this project's machines, and an upstream call took one to five of them (the call, the
first token, each stream read, the drain after the terminator). A :class:`Watchdog` is
one repeating timer per event loop, ticking every :data:`TICK_S` while anything is
watched: each tick cancels the waits whose limit has passed. A limit therefore fires up
to one tick late, nothing to limits of seconds (connect, first token, total).

A wait is a :class:`Watch`: ``when`` (the loop's clock) can move (a stream's limit moves
from its first token to its total once the first token came), and it cancels its task
only while ``task`` is set (a stream consumer busy elsewhere is not cancelled: its
``fired`` is seen at its next wait). :func:`limited` is the ``asyncio.timeout_at`` of one
awaitable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
TICK_S = 0.05


class Watch:
    """One wait under a limit (see the module's docstring)."""

    __slots__ = ("cancelled", "fired", "task", "when")

    def __init__(self, when: float, task: asyncio.Task[Any] | None = None) -> None:
        self.when = when
        self.task = task
        self.fired = False
        self.cancelled = False  # the watchdog cancelled ``task``

    def fire(self) -> None:
        self.fired = True
        task = self.task
        if task is not None and not task.done():
            self.cancelled = True
            task.cancel()

    def spent(self) -> bool:
        """Whether a cancellation just caught was this watch's own (then it is taken
        back, and the wait is a timeout), not the caller's."""
        if not self.cancelled or self.task is None:
            return False
        self.cancelled = False
        return self.task.uncancel() == 0


class Watchdog:
    """The waits of one event loop under one repeating timer."""

    __slots__ = ("_timer", "_watched", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._watched: set[Watch] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, when: float, task: asyncio.Task[Any] | None = None) -> Watch:
        watch = Watch(when, task)
        self._watched.add(watch)
        if self._timer is None:
            self._timer = self.loop.call_later(TICK_S, self._tick)
        return watch

    def stop(self, watch: Watch) -> None:
        self._watched.discard(watch)

    def _tick(self) -> None:
        now = self.loop.time()
        for watch in [w for w in self._watched if w.when <= now]:
            self._watched.discard(watch)
            watch.fire()
        self._timer = self.loop.call_later(TICK_S, self._tick) if self._watched else None


_DOGS: dict[asyncio.AbstractEventLoop, Watchdog] = {}


def watchdog(loop: asyncio.AbstractEventLoop | None = None) -> Watchdog:
    """The running loop's watchdog (made at its first use; dropped with the loop's last
    watch, so closed loops are not kept)."""
    loop = loop or asyncio.get_running_loop()
    dog = _DOGS.get(loop)
    if dog is None:
        if len(_DOGS) > 16:  # loops of finished runs (tests): forget the idle ones
            for old in [k for k, d in _DOGS.items() if d._timer is None]:
                del _DOGS[old]
        dog = _DOGS[loop] = Watchdog(loop)
    return dog


async def limited(awaitable: Awaitable[T], when: float,
                  loop: asyncio.AbstractEventLoop | None = None) -> T:
    """``awaitable``, cancelled when the loop's clock passes ``when``: then raises
    ``TimeoutError`` (as ``asyncio.timeout_at``); a caller's own cancellation stays one."""
    dog = watchdog(loop)
    watch = dog.start(when, asyncio.current_task(dog.loop))
    try:
        return await awaitable
    except asyncio.CancelledError:
        if watch.spent():
            raise TimeoutError from None
        raise
    finally:
        dog.stop(watch)
        watch.spent()  # a cancellation of ours the awaitable swallowed: taken back too
