"""HTTP plumbing shared by the adapters: deadlines, error mapping, server-sent events.

Every upstream failure leaves this module as a :class:`pointsman.errors.ProviderError`:

    429                               RateLimitedError (retry_after from Retry-After /
                                      retry-after-ms: seconds or an HTTP date)
    5xx, 529 (overloaded), 408, 409   UpstreamServerError (status kept)
    401, 403, 404                     UpstreamMisconfiguredError (our key, URL or model name
                                      is wrong there: a 502 naming the upstream; fall back)
    any other 4xx                     UpstreamRejectedError (status and upstream message kept)
    connection refused / DNS / TLS    UpstreamConnectionError
    connect, first-byte, total limit  UpstreamTimeoutError (the message says which)
    reset or cut after the headers    StreamBrokenError

API keys never reach a message: each adapter redacts its own key from upstream text.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from pointsman.errors import (
    ProviderError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamConnectionError,
    UpstreamMisconfiguredError,
    UpstreamRejectedError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from pointsman.providers.base import Timeouts

log = logging.getLogger("pointsman.providers")

T = TypeVar("T")
RETRYABLE_4XX = frozenset({408, 409})
MISCONFIGURED_4XX = {401: "refused pointsman's API key", 403: "denied pointsman access",
                     404: "has no such URL or model"}
MAX_ERROR_BODY = 64 * 1024
DRAIN_S = 1.0  # what follows a stream's terminator: read this long at most, then close
DRAIN_EVENTS = 16
KEPT_HEADERS = ("x-request-id", "request-id", "openai-processing-ms")


class Deadline:
    """The time limits of one call, on the event loop's clock.

    ``first_token`` bounds the wait for the first byte of a stream (its first event);
    ``total`` bounds the whole call, the stream included. A non-streaming answer's first
    byte is the whole answer, so only ``total`` applies to it.
    """

    def __init__(self, timeouts: Timeouts, model: str, *, streaming: bool) -> None:
        now = asyncio.get_running_loop().time()
        self.timeouts = timeouts
        self.model = model
        self.total_at = now + timeouts.total
        self.first_at = now + timeouts.first_token if streaming else self.total_at
        self.first_seen = not streaming

    def _limit(self) -> tuple[float, str]:
        if not self.first_seen and self.first_at < self.total_at:
            return self.first_at, (
                f"no first byte within the first-token timeout of {self.timeouts.first_token}s")
        return self.total_at, f"not finished within the total timeout of {self.timeouts.total}s"

    def check(self) -> None:
        """Raise if the total time is spent (called when the consumer resumes a stream)."""
        when, what = self._limit()
        if asyncio.get_running_loop().time() >= when:
            raise UpstreamTimeoutError(what, self.model)

    async def run(self, awaitable: Awaitable[T]) -> T:
        when, what = self._limit()
        try:
            async with asyncio.timeout_at(when):
                return await awaitable
        except TimeoutError:
            raise UpstreamTimeoutError(what, self.model) from None


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def upstream_message(body: bytes) -> str:
    """The human part of an upstream error body (OpenAI and Anthropic shapes), shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or error
        if isinstance(error, list) and error:
            error = error[0]
        if isinstance(error, str):
            return error[:300]
    return text[:300]


def status_error(status: int, headers: Mapping[str, str], message: str,
                 model: str, where: str = "the upstream") -> ProviderError:
    if status in MISCONFIGURED_4XX:
        return UpstreamMisconfiguredError(
            f"upstream {where} {MISCONFIGURED_4XX[status]} ({status}): {message} (check "
            "the endpoint's base_url, API key and model name)", model, status)
    if status == 429:
        retry_after = parse_retry_after(headers)
        return RateLimitedError(f"upstream rate limit (429): {message}", model, retry_after)
    if status >= 500 or status in RETRYABLE_4XX:
        return UpstreamServerError(f"upstream error {status}: {message}", model, status)
    return UpstreamRejectedError(f"upstream rejected the request ({status}): {message}",
                                 model, status)


def transport_error(exc: httpx.HTTPError, model: str, where: str, *, streaming: bool,
                    redact: Callable[[str], str] = str) -> ProviderError:
    """An httpx failure as one of ours. ``where`` names the upstream host, never a key."""
    reason = redact(str(exc) or type(exc).__name__)
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamTimeoutError(f"connect timeout to {where}", model)
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamTimeoutError(f"no free connection to {where} in time", model)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"timeout talking to {where}: {reason}", model)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamConnectionError(f"cannot connect to {where}: {reason}", model)
    if streaming:
        return StreamBrokenError(f"the stream from {where} broke: {reason}", model)
    return UpstreamConnectionError(f"connection to {where} failed: {reason}", model)


def kept_headers(headers: httpx.Headers) -> dict[str, str]:
    """Response headers worth passing on: rate-limit state and request ids."""
    return {k: v for k, v in headers.items()
            if k.startswith(("x-ratelimit", "anthropic-ratelimit")) or k in KEPT_HEADERS}


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that stores nothing: one shared client serves every caller, so a
    ``Set-Cookie`` from an upstream must never ride along on another caller's request."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class HttpAdapter:
    """The HTTP half of an adapter: opens calls, maps failures, reads JSON and SSE."""

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient | None = None, *,
                 api_key: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self.client = client if client is not None else httpx.AsyncClient(cookies=no_cookies())
        self._api_key = api_key or None
        self.extra_headers = dict(headers or {})
        self.where = httpx.URL(self.base_url).host or self.base_url
        self._urls: dict[str, httpx.URL] = {}
        self._timeouts: dict[Timeouts, httpx.Timeout] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def guarded(self, deadline: Deadline, awaitable: Awaitable[T], *,
                      streaming: bool) -> T:
        try:
            return await deadline.run(awaitable)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deadline.model, self.where, streaming=streaming,
                                  redact=self.redact) from None

    # per-call objects built once (parsing a URL or building headers costs ~30 us a call)
    def _url(self, url: str) -> httpx.URL:
        found = self._urls.get(url)
        if found is None:
            found = self._urls[url] = httpx.URL(url)
        return found

    def _headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        if not self.extra_headers:
            return headers
        return {**self.extra_headers, **headers}

    def _timeout(self, t: Timeouts) -> httpx.Timeout:
        found = self._timeouts.get(t)
        if found is None:
            found = self._timeouts[t] = httpx.Timeout(None, connect=t.connect, pool=t.connect,
                                                      write=t.total)
        return found

    async def open(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                   deadline: Deadline) -> httpx.Response:
        """Send the call; return the response (body unread) or raise the mapped error."""
        request = self.client.build_request(
            "POST", self._url(url), json=body, headers=self._headers(headers),
            timeout=self._timeout(deadline.timeouts))
        response = await self.guarded(deadline, self.client.send(request, stream=True),
                                      streaming=False)
        if response.status_code < 400:
            return response
        try:
            raw = await self.guarded(deadline, response.aread(), streaming=False)
        finally:
            await response.aclose()
        message = self.redact(upstream_message(raw[:MAX_ERROR_BODY]))
        error = status_error(response.status_code, response.headers, message, deadline.model,
                             self.where)
        log.info("%s: %s", self.name, error.message)
        raise error

    async def read_json(self, response: httpx.Response, deadline: Deadline) -> dict[str, Any]:
        try:
            raw = await self.guarded(deadline, response.aread(), streaming=False)
        finally:
            await response.aclose()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamServerError(f"{self.where} answered with a body that is not a JSON "
                                      "object", deadline.model, response.status_code)
        return data

    async def events(self, response: httpx.Response,
                     deadline: Deadline) -> AsyncGenerator[SseEvent, None]:
        """The server-sent events of a response, each read within the deadline."""
        lines = response.aiter_lines()
        event, data = "", []
        while True:
            try:
                line = await self.guarded(deadline, anext(lines), streaming=True)
            except StopAsyncIteration:
                return
            if line:
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    data.append(value)
                elif field == "event":
                    event = value
                continue
            if data:
                deadline.first_seen = True
                yield SseEvent(event, "\n".join(data))
                deadline.check()
            event, data = "", []


async def drain(events: AsyncGenerator[SseEvent, None]) -> None:
    """Read what follows a stream's terminator (normally only the end of the body), so the
    connection goes back to the pool instead of being closed. An upstream that keeps
    sending is given up on after a few events or :data:`DRAIN_S` (the connection closes)."""
    try:
        async with asyncio.timeout(DRAIN_S):
            for _ in range(DRAIN_EVENTS):
                await anext(events)
    except (StopAsyncIteration, TimeoutError, ProviderError):
        return


def decode_event(event: SseEvent, model: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(event.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise StreamBrokenError(f"malformed stream event from {where}: {event.data[:80]!r}",
                                model)
    return data
