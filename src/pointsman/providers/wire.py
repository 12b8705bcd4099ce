"""The HTTP client under the adapters: one small interface, two implementations.

:class:`AiohttpWire` sends over aiohttp's connection pool directly; :class:`HttpxWire`
over an ``httpx.AsyncClient`` (httpcore's pool, proxies and custom transports). Measured
against the local stub on one core (``benchmarks/bench_providers.py``, CPU of the calling
thread per call): a bare POST costs ~680 µs over httpx and ~170 µs over aiohttp one call at
a time, ~1,200 µs and ~100 µs with 16 in flight (httpcore's pool polls every connection on
each call). The gateway, which closes its providers in the loop that used them, takes
a third, leaner one (:mod:`pointsman.providers.rawwire`, ``providers.pool.transport:
auto``), or aiohttp when the environment names a proxy.

Both raise failures as httpx exceptions (``httpx.ConnectError``, ``httpx.ReadTimeout``…),
which :func:`pointsman.providers.http.transport_error` maps to pointsman's errors, so the
adapters see no difference. Neither stores cookies: one client serves every caller, so a
``Set-Cookie`` from an upstream must never ride along on another caller's request.
"""

from __future__ import annotations

import http.cookiejar
import os
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx

from pointsman.providers.base import Timeouts


class WireResponse(Protocol):
    """A response whose body is not read yet; ``aclose`` must be called once done."""

    status: int
    headers: Mapping[str, str]  # case-insensitive lookups

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives from the network (decoded from any content-encoding)."""
        ...

    async def aclose(self) -> None: ...


class Wire(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   timeouts: Timeouts) -> WireResponse:
        """Send; return once the response's headers are in."""
        ...

    async def aclose(self) -> None: ...


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that stores nothing (for an ``httpx.AsyncClient`` shared by callers)."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


# -- httpx ---------------------------------------------------------------------------------
class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        return await self._response.aread()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxWire:
    """Calls through an ``httpx.AsyncClient`` (``owns``: :meth:`aclose` closes it)."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, owns: bool = True) -> None:
        self.client = client if client is not None else httpx.AsyncClient(cookies=no_cookies())
        self.owns = owns
        self._timeouts: dict[Timeouts, httpx.Timeout] = {}

    def _timeout(self, t: Timeouts) -> httpx.Timeout:
        found = self._timeouts.get(t)
        if found is None:
            found = self._timeouts[t] = httpx.Timeout(None, connect=t.connect, pool=t.connect,
                                                      write=t.total)
        return found

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   timeouts: Timeouts) -> WireResponse:
        request = self.client.build_request("POST", url, content=body, headers=headers,
                                            timeout=self._timeout(timeouts))
        return _HttpxResponse(await self.client.send(request, stream=True))

    async def aclose(self) -> None:
        if self.owns:
            await self.client.aclose()


# -- aiohttp -------------------------------------------------------------------------------
def as_httpx(exc: BaseException) -> httpx.TransportError:
    """The httpx exception an aiohttp (or timeout) failure corresponds to."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return httpx.ReadError(text)
    return httpx.NetworkError(text)


FAILURES = (TimeoutError, aiohttp.ClientError, OSError)


def proxy_env() -> bool:
    """Whether the environment names a proxy or a netrc file."""
    names = {"http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "netrc"}
    return any(k.lower() in names and v for k, v in os.environ.items())


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except FAILURES as exc:
            raise as_httpx(exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except FAILURES as exc:
            raise as_httpx(exc) from exc

    async def aclose(self) -> None:
        self._response.release()  # an unread body: aiohttp closes the connection instead


class AiohttpWire:
    """Calls over one aiohttp session, made in the running loop on the first call (a
    session belongs to its event loop); :meth:`aclose` closes it. ``max_connections`` bounds
    the pool; idle connections live ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0,
                 trust_env: bool = False) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        # aiohttp's trust_env looks up proxies and .netrc in a worker thread on every call:
        # only pay for that when the environment names a proxy or a netrc file
        self.trust_env = trust_env and proxy_env()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             keepalive_timeout=self.keepalive_expiry)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=self.trust_env,
                cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",))
        return self._session

    def _timeout(self, t: Timeouts) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(t)
        if found is None:  # the first-token and total limits are the adapter's Deadline
            found = self._timeouts[t] = aiohttp.ClientTimeout(total=None,
                                                              sock_connect=t.connect)
        return found

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   timeouts: Timeouts) -> WireResponse:
        session = self._open_session()
        try:
            response = await session.post(url, data=body, headers=headers,
                                          allow_redirects=False, compress=None,
                                          timeout=self._timeout(timeouts))
        except FAILURES as exc:
            raise as_httpx(exc) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
