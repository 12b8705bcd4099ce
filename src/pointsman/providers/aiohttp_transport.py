"""An httpx transport that sends over aiohttp's connection pool.

The adapters keep speaking httpx (requests, responses, the error mapping in
:mod:`pointsman.providers.http`); only the wire below is aiohttp's, because httpcore's
pool costs far more CPU per call. Measured against the local stub on one core of this
machine (benchmarks/bench_gateway.py --clients): httpx+httpcore ~0.8 ms CPU per call at
concurrency 1 and ~2 ms at 32 (its pool scans every connection, with a ``poll`` each, per
call); httpx over this transport ~0.25 ms at both. aiohttp failures are raised as the
httpx exceptions they correspond to, so callers see no difference.

The aiohttp session belongs to an event loop: it is made on the first request, in the
running loop, and :meth:`AiohttpTransport.aclose` closes it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx


def _as_httpx(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception an aiohttp (or timeout) failure corresponds to."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return httpx.ReadError(text, request=request)
    return httpx.NetworkError(text, request=request)


def _proxy_env() -> bool:
    names = {"http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "netrc"}
    return any(k.lower() in names and v for k, v in os.environ.items())


class _Body(httpx.AsyncByteStream):
    """A response body read from aiohttp; closing it returns or drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _as_httpx(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()  # unread body: aiohttp closes the connection instead


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=AiohttpTransport(...))``: pool limits as httpx's
    (``max_keepalive_connections`` has no aiohttp counterpart: idle connections live
    ``keepalive_expiry`` seconds)."""

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0,
                 trust_env: bool = False) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        # aiohttp's trust_env looks up proxies and .netrc in a worker thread on every call:
        # only pay for that when the environment names a proxy or a netrc file
        self.trust_env = trust_env and _proxy_env()
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             keepalive_timeout=self.keepalive_expiry)
            # httpx decodes content-encoding itself; aiohttp must hand the bytes over as sent
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=self.trust_env,
                cookie_jar=aiohttp.DummyCookieJar(),  # see providers.http.no_cookies
                timeout=aiohttp.ClientTimeout(total=None), skip_auto_headers=("User-Agent",))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open_session()
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            response = await session.request(
                request.method, str(request.url), data=body or None,
                headers=[(k.decode("latin-1"), v.decode("latin-1"))
                         for k, v in request.headers.raw],
                allow_redirects=False, compress=None,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout.get("connect"),
                                              sock_read=timeout.get("read")))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _as_httpx(exc, request) from exc
        return httpx.Response(response.status, headers=list(response.raw_headers),
                              stream=_Body(response, request),
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
