"""A lean HTTP/1.1 client for the gateway's upstream calls: asyncio protocols and
httptools' parser (both already under the server), one keep-alive connection pool per
origin, one write per request.

aiohttp's client costs ~100 µs of CPU per call with 16 in flight (providers/wire.py); most
of it is what a general client does and an upstream call needs not (cookies, redirects,
tracing signals, auto headers, multipart payloads). This one does what the adapters use:
``POST`` a finished body, read the status and headers, then the body whole or as it
arrives (chunked or sized; gzip and deflate decoded, though it asks for ``identity``).
Failures are raised as httpx exceptions, as the other wires do. No proxies: with a proxy
in the environment the gateway takes aiohttp (see providers/config.py).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import httpx

from pointsman.providers.base import Timeouts

Origin = tuple[str, int, bool]  # host, port, tls
PAUSE_BYTES = 1 << 20  # a body buffered past this pauses the socket until it is read


class Headers(dict[str, str]):
    """Response headers, names lower-cased; lookups by any case."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class _Connection(asyncio.Protocol):
    """One connection; at most one response in flight on it."""

    def __init__(self, wire: RawWire, origin: Origin) -> None:
        self.wire = wire
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: RawResponse | None = None
        self.idle_since = 0.0
        self.lost = False
        self.interim = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
        except httptools.HttpParserUpgrade:  # pragma: no cover - never asked for
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        response = self.response
        if response is None or response.complete:
            return
        if exc is None and response.status and response.delimited_by_close():
            response.finished()  # a body without a length ends with its connection
        else:
            response.failed(httpx.RemoteProtocolError(
                "server disconnected" if exc is None else f"connection lost: {exc}"))

    # -- httptools callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.fields[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if self.response is None:  # an answer nobody asked for: the connection is unusable
            self.close()
        elif 100 <= status < 200:  # an interim answer (100 Continue...): the real one follows
            self.interim = True
            self.response.fields.clear()
        else:
            self.response.headed(status, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.received(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
        elif self.response is not None:
            self.response.finished()
            self.response = None  # what follows on this connection is not its

    # -- the pool's side ----------------------------------------------------------------
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: httpx.TransportError) -> None:
        if self.response is not None:
            self.response.failed(error)
        self.close()


class RawResponse:
    """A response whose body arrives into a buffer (the WireResponse protocol)."""

    __slots__ = ("_buffered", "_decoder", "_parts", "_waiter", "complete", "connection",
                 "error", "fields", "head", "headers", "keep_alive", "status")

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.status = 0
        self.fields = Headers()
        self.headers: Mapping[str, str] = self.fields
        self.keep_alive = False
        self.complete = False
        self.error: httpx.TransportError | None = None
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parts: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None

    # -- fed by the connection ----------------------------------------------------------
    def headed(self, status: int, keep_alive: bool) -> None:
        self.status, self.keep_alive = status, keep_alive
        encoding = self.headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(31 if "gzip" in encoding else 15)
        if not self.head.done():
            self.head.set_result(None)

    def received(self, data: bytes) -> None:
        self._parts.append(data)
        self._buffered += len(data)
        transport = self.connection.transport
        if self._buffered > PAUSE_BYTES and transport is not None:
            transport.pause_reading()
        self._wake()

    def delimited_by_close(self) -> bool:
        headers = self.fields
        return "content-length" not in headers and "transfer-encoding" not in headers

    def finished(self) -> None:
        self.complete = True
        self._wake()

    def failed(self, error: httpx.TransportError) -> None:
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- read by the adapter ------------------------------------------------------------
    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._parts:
                data = b"".join(self._parts) if len(self._parts) > 1 else self._parts[0]
                self._parts.clear()
                self._drained()
                yield self._decoded(data)
            elif self.error is not None:
                raise self.error
            elif self.complete:
                if self._decoder is not None:
                    tail = self._decoder.flush()
                    if tail:
                        yield tail
                return
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
                self._waiter = None

    def _drained(self) -> None:
        paused = self._buffered > PAUSE_BYTES
        self._buffered = 0
        transport = self.connection.transport
        if paused and transport is not None and not self.connection.lost:
            transport.resume_reading()

    def _decoded(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        try:
            out: bytes = self._decoder.decompress(data)
        except zlib.error as exc:
            raise httpx.DecodingError(f"cannot decode the response body: {exc}") from None
        return out

    async def aclose(self) -> None:
        """Back to the pool when read to its end on a keep-alive connection, else closed
        (an unread body cannot be skipped safely)."""
        connection = self.connection
        connection.response = None
        if self.complete and self.keep_alive and self.error is None and connection.usable():
            connection.wire.release(connection)
        else:
            connection.close()
            connection.wire.forget(connection)


class RawWire:
    """Calls over pooled keep-alive connections (the Wire protocol). ``max_connections``
    bounds the connections open at once (callers beyond it wait for one, as aiohttp's
    pool does); an idle connection lives ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.keepalive_expiry = keepalive_expiry
        self.max_connections = max_connections
        self._count = 0  # connections open (in use or idle)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        self._tls = tls  # None: httpx's (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), at first use

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   timeouts: Timeouts) -> RawResponse:
        origin, target = self._target(url)
        head = _request_head(target, headers, len(body))
        connection = await self._connection(origin, timeouts)
        response = connection.response = RawResponse(connection)
        try:
            assert connection.transport is not None
            connection.transport.write(head + body)
            await response.head
        except BaseException:
            await response.aclose()
            raise
        return response

    def _target(self, url: str) -> tuple[Origin, bytes]:
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise httpx.UnsupportedProtocol(f"cannot call {url!r}: not an http(s) URL")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]
            found = ((parts.hostname, port, tls),
                     f"POST {path} HTTP/1.1\r\nhost: {netloc}\r\n".encode("latin-1"))
            if len(self._targets) < 1024:
                self._targets[url] = found
        return found

    async def _connection(self, origin: Origin, timeouts: Timeouts) -> _Connection:
        """An idle connection to ``origin``, else a new one when under the limit, else
        (after closing idle connections to other origins) wait for one to come back."""
        while True:
            connection = self._idle_connection(origin)
            if connection is not None:
                return connection
            if self._count < self.max_connections:
                self._count += 1
                try:
                    return await self._connect(origin, timeouts)
                except BaseException:
                    self._count -= 1
                    self._wake()
                    raise
            if not self._drop_idle():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if connection.usable() and now - connection.idle_since < self.keepalive_expiry:
                return connection
            self._drop(connection)
        return None

    def _drop_idle(self) -> bool:
        """Close the idle connections (to make room for another origin's)."""
        dropped = False
        for connections in self._idle.values():
            while connections:
                self._drop(connections.pop())
                dropped = True
        return dropped

    def _wake(self) -> None:
        """A connection came back or went: the first waiting caller looks again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, origin: Origin, timeouts: Timeouts) -> _Connection:
        host, port, tls = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeouts.connect):
                transport, connection = await loop.create_connection(
                    lambda: _Connection(self, origin), host, port,
                    ssl=self._context() if tls else None,
                    server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        connection.transport = transport  # uvloop calls connection_made later
        self._open.add(connection)
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:  # the same trust as the httpx clients elsewhere
            self._tls = httpx.create_ssl_context(verify=True, trust_env=True)
        return self._tls

    def release(self, connection: _Connection) -> None:
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._wake()

    def forget(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._count -= 1
            self._wake()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self.forget(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._drop(connection)
        self._idle.clear()
        await asyncio.sleep(0)  # the transports close their sockets in the next iteration


def _request_head(target: bytes, headers: Mapping[str, str], length: int) -> bytes:
    lines = [target]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise httpx.LocalProtocolError(f"header {name!r}: line breaks are not allowed")
        try:
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError(f"header {name!r}: not latin-1") from None
    lines.append(b"accept-encoding: identity\r\ncontent-length: %d\r\n\r\n" % length)
    return b"".join(lines)
