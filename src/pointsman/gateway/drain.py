"""Shutdown without losing a row: SIGTERM drains in-flight requests for
``gateway.drain_timeout_s``; those still running shortly before it ends are *interrupted*
by the gateway itself (not cut by the server): a non-streaming request is answered 503
``shutting_down`` (Retry-After: 1), a stream ends with an error event in the caller's
format, and each is logged as ``interrupted`` with what it cost (a stream: what was
streamed, charged; a call cut before its answer: its hold released, nothing charged, as for
a killed replica). The process then exits with status 3 and says how many it interrupted,
instead of 0.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pointsman.gateway.exchange import Exchange

log = logging.getLogger("pointsman.gateway")
MARGIN_S = 1.0  # interrupt this long before the server's own deadline cuts connections
INTERRUPTED_EXIT = 3


class Drain:
    """The in-flight requests of one gateway and the shutdown that interrupts them."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.inflight: dict[Exchange, asyncio.Task[object]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False
        self.interrupted = 0

    def track(self, exchange: Exchange) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.inflight[exchange] = task

    def done(self, exchange: Exchange) -> None:
        self.inflight.pop(exchange, None)

    def begin(self) -> None:
        """Start draining (from the SIGTERM handler, on the loop's thread): in-flight
        requests still running ``MARGIN_S`` before the drain ends are interrupted."""
        if self.draining or self.loop is None:
            return
        self.draining = True
        delay = max(0.0, self.timeout_s - MARGIN_S)
        self.loop.call_soon_threadsafe(self.loop.call_later, delay, self.interrupt_all)

    def interrupt_all(self) -> None:
        for exchange, task in list(self.inflight.items()):
            if not task.done() and not exchange.interrupted and not exchange.finishing:
                exchange.interrupted = True
                self.interrupted += 1
                task.cancel()
        if self.interrupted:
            log.warning("drain: %d in-flight requests interrupted after %.0f s",
                        self.interrupted, self.timeout_s - MARGIN_S)

    def summary(self) -> tuple[int, str]:
        """(the exit status, the line to print) once the server has stopped."""
        if self.interrupted:
            return INTERRUPTED_EXIT, (
                f"pointsman: drain timed out after {self.timeout_s:g} s: {self.interrupted} "
                "in-flight requests were interrupted (answered 503 or ended with an error "
                "event, and logged as interrupted)")
        return 0, "pointsman: stopped after draining in-flight requests"
