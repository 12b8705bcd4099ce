"""The lean HTTP/1.1 wire (providers/rawwire.py) against a hand-written upstream: the
body framings (sized, chunked, ended by the connection), gzip, the connection limit, and
what it refuses to send."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trustme

from pointsman.providers.base import Timeouts
from pointsman.providers.rawwire import RawWire

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


@asynccontextmanager
async def _wire(**options: Any) -> AsyncIterator[RawWire]:
    """A RawWire, closed when the block ends (whatever happens in it)."""
    wire = RawWire(**options)
    try:
        yield wire
    finally:
        await wire.aclose()


@asynccontextmanager
async def _upstream(answer: Answer, tls: ssl.SSLContext | None = None
                    ) -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering each request with ``answer`` (which says whether the connection
    stays open); yields its URL and the number of requests per connection."""
    per_connection: list[int] = []
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        per_connection.append(0)
        try:
            while True:
                await _read_request(reader)
                per_connection[-1] += 1
                if not await answer(reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1/x?y=1", per_connection
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 10)


async def _call(wire: RawWire, url: str) -> tuple[int, str, bytes]:
    response = await wire.post(url, b'{"a": 1}', {"content-type": "application/json"},
                               Timeouts())
    try:
        return response.status, response.headers.get("X-Test", ""), await response.read()
    finally:
        await response.aclose()


def test_interim_sized_chunked_and_gzip_answers_on_one_kept_connection() -> None:
    packed = gzip.compress(b"hello gzip")
    answers = [b"HTTP/1.1 100 Continue\r\nx-test: interim\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nx-test: sized\r\ncontent-length: 5\r\n\r\nhello",
               b"HTTP/1.1 201 Created\r\nX-Test: chunked\r\ntransfer-encoding: chunked"
               b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d"
               b"\r\n\r\n%s" % (len(packed), packed)]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(answers.pop(0))
        await writer.drain()
        return True

    async def scenario() -> None:
        async with _upstream(answer) as (url, per_connection):
            async with _wire() as wire:
                assert await _call(wire, url) == (200, "sized", b"hello")
                assert await _call(wire, url) == (201, "chunked", b"abcde")
                assert (await _call(wire, url))[2] == b"hello gzip"
            assert per_connection == [3]

    asyncio.run(scenario())


def test_a_body_ended_by_the_connection_is_whole() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()
        return False

    async def scenario() -> None:
        async with _upstream(answer) as (url, per_connection):
            async with _wire() as wire:
                assert (await _call(wire, url))[2] == b"until the end"
                assert (await _call(wire, url))[2] == b"until the end"
            assert per_connection == [1, 1]

    asyncio.run(scenario())


def test_a_connection_cut_mid_body_is_a_protocol_error() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        return False

    async def scenario() -> None:
        async with _upstream(answer) as (url, _), _wire() as wire:
            with pytest.raises(httpx.RemoteProtocolError):
                await _call(wire, url)

    asyncio.run(scenario())


def test_the_connection_limit_makes_callers_wait_then_reuse() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return True

    async def scenario() -> None:
        async with _upstream(answer) as (url, per_connection):
            async with _wire(max_connections=1) as wire:
                results = await asyncio.gather(*(_call(wire, url) for _ in range(4)))
            assert [r[2] for r in results] == [b"ok"] * 4
            assert per_connection == [4]

    asyncio.run(scenario())


def test_header_line_breaks_and_other_schemes_are_refused() -> None:
    async def scenario() -> None:
        async with _wire() as wire:
            with pytest.raises(httpx.LocalProtocolError):
                await wire.post("http://127.0.0.1:9/v1", b"", {"x-a": "1\r\nx-b: 2"},
                                Timeouts())
            with pytest.raises(httpx.UnsupportedProtocol):
                await wire.post("ftp://127.0.0.1/v1", b"", {}, Timeouts())

    asyncio.run(scenario())


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-test: tls\r\n\r\nok")
    await writer.drain()
    return True


def test_https_upstreams_are_verified_and_kept_alive() -> None:
    """Every real provider is HTTPS: the certificate is checked against the trusted CAs
    (a test CA here; httpx's certifi bundle or SSL_CERT_FILE by default) for the host."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)

    async def run() -> None:
        async with _upstream(_ok, server) as (url, per_connection):
            async with _wire(tls=client) as trusting:
                assert await _call(trusting, url) == (200, "tls", b"ok")
                assert await _call(trusting, url) == (200, "tls", b"ok")
            assert per_connection[0] == 2  # one TLS connection kept for both
            async with _wire() as default:  # does not trust the test CA
                with pytest.raises(httpx.ConnectError):
                    await _call(default, url)
    asyncio.run(run())
