"""uvicorn options shared by ``pointsman serve`` and the benchmark's upstream stub."""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from typing import Literal


def fast_loop() -> Literal["uvloop", "asyncio"]:
    """uvloop when installed (it is a dependency), else asyncio."""
    return "uvloop" if find_spec("uvloop") is not None else "asyncio"


def fast_http() -> Literal["httptools", "h11"]:
    """httptools when installed (it is a dependency), else h11."""
    return "httptools" if find_spec("httptools") is not None else "h11"


def guarded_http(max_header_bytes: int, header_timeout_s: float) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol, with what it lacks against slow or hostile clients: a
    request head (request line and headers) over ``max_header_bytes`` is answered 431 and
    the connection closed (before it is held in memory), and a head not complete within
    ``header_timeout_s`` of its first byte (or of the connection) is answered 408 and
    closed, so a client that trickles headers cannot hold a connection. Without httptools,
    h11 (its ``h11_max_incomplete_event_size`` bounds the head instead)."""
    if fast_http() != "httptools":
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        head_limit = max_header_bytes
        head_timeout_s = header_timeout_s
        head_bytes = 0
        in_head = True
        served = False  # a head came whole: from now on only a started head is timed
        refused = False
        head_started = 0.0
        head_timer: asyncio.TimerHandle | None = None
        idle_since: float | None = None  # waiting for its next request since (loop clock)
        idle_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_started = self.loop.time()
            self.joined = HeadJoiner(transport, self.loop)
            self._arm()

        def _arm(self) -> None:
            """One timer per connection, armed only while a head is incomplete after a
            read (a head that comes whole, the usual case, costs no timer); when it fires
            it checks the head's age and re-arms for the rest of its time."""
            if self.head_timer is None:
                wait = self.head_started + self.head_timeout_s - self.loop.time()
                self.head_timer = self.loop.call_later(max(wait, 0.0), self._check)

        def _check(self) -> None:
            self.head_timer = None
            if not self.in_head or (self.served and not self.head_bytes):
                return  # a request in hand, or waiting for the next (keep-alive's to time)
            if self.loop.time() - self.head_started >= self.head_timeout_s:
                self._refuse(408, "request headers not received in time")
            else:
                self._arm()

        def data_received(self, data: bytes) -> None:
            if self.in_head:
                if not self.head_bytes:  # a head's first byte: its clock starts
                    self.head_started = self.loop.time()
                self.head_bytes += len(data)
            super().data_received(data)
            if self.in_head and self.head_bytes > self.head_limit:
                self._refuse(431, "request header fields too large")
            elif self.in_head and self.head_bytes:
                self._arm()  # a head is on its way but incomplete: time it

        def on_headers_complete(self) -> None:
            self.in_head, self.head_bytes, self.served = False, 0, True
            super().on_headers_complete()
            if self.cycle is not None:
                self.cycle.transport = self.joined  # type: ignore[assignment]
                self.cycle.on_disconnect = None  # type: ignore[attr-defined]  # sse.py's hook

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # what comes next is the next head, timed from its first byte
            self.in_head, self.head_bytes = True, 0

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in (self.head_timer, self.idle_timer):
                if timer is not None:
                    timer.cancel()
            self.head_timer = None
            self.idle_timer = None
            cycle = self.cycle
            super().connection_lost(exc)
            left = getattr(cycle, "on_disconnect", None)
            if left is not None:  # a streaming response listens (gateway/sse.py)
                left()

        # -- keep-alive: one lazily re-armed timer per connection, not one per response --
        def on_response_complete(self) -> None:
            """uvicorn's (0.54), but an idle connection's keep-alive limit is checked by
            a timer armed once and re-armed only when it fires early (uvicorn starts and
            cancels a loop timer per response: ~3-8 µs)."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._unset_keepalive_if_required()
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self.idle_since = self.loop.time()
            if self.idle_timer is None:
                self.idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle)

        def _unset_keepalive_if_required(self) -> None:
            self.idle_since = None
            super()._unset_keepalive_if_required()

        def _idle(self) -> None:
            self.idle_timer = None
            if self.idle_since is None:
                return  # busy again: the next response arms it
            left = self.idle_since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self.idle_timer = self.loop.call_later(left, self._idle)
            else:
                self.timeout_keep_alive_handler()

        def send_400_response(self, msg: str) -> None:
            if not self.refused:  # a refused head already has its answer
                super().send_400_response(msg)

        def _refuse(self, status: int, message: str) -> None:
            if self.refused or self.transport.is_closing():
                return
            self.refused = True
            reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                                 % (status, reason, len(message), message.encode()))
            self.transport.close()

    return GuardedHttpToolsProtocol


class HeadJoiner:
    """The transport as uvicorn's response cycle sees it: a response's head is held until
    the body's first write, so the two leave in one write (one send, one segment, one
    wake-up of the reader) instead of two; a head with no body write in the same loop
    iteration goes out alone. The bytes and their order are unchanged."""

    __slots__ = ("held", "loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.held is not None:
            data, self.held = self.held + data, None
            self.transport.write(data)
        elif data.startswith(b"HTTP/1.1 "):
            self.held = data
            self.loop.call_soon(self.flush)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        if self.held is not None:
            data, self.held = self.held, None
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()
