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
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

import httpx
import orjson

from pointsman import jsonio
from pointsman.deadlines import limited, watchdog
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
from pointsman.providers.base import ChatCall, Timeouts
from pointsman.providers.wire import HttpxWire, Wire, WireResponse

log = logging.getLogger("pointsman.providers")

T = TypeVar("T")
Chunk = dict[str, Any]  # an OpenAI chat.completion.chunk
RETRYABLE_4XX = frozenset({408, 409})
MISCONFIGURED_4XX = {401: "refused pointsman's API key", 403: "denied pointsman access",
                     404: "has no such URL or model"}
MAX_ERROR_BODY = 64 * 1024
DRAIN_S = 1.0  # what follows a stream's terminator: read this long at most, then close
DRAIN_READS = 16
KEPT_HEADERS = ("x-request-id", "request-id", "openai-processing-ms")


class Deadline:
    """The time limits of one call, on the event loop's clock.

    ``first_token`` bounds the wait for the first byte of a stream (its first event);
    ``total`` bounds the whole call, the stream included. A non-streaming answer's first
    byte is the whole answer, so only ``total`` applies to it.
    """

    def __init__(self, timeouts: Timeouts, model: str, *, streaming: bool) -> None:
        self.loop = asyncio.get_running_loop()  # once: each lookup is a getpid() on 3.11
        now = self.loop.time()
        self.timeouts = timeouts
        self.model = model
        self.total_at = now + timeouts.total
        self.first_at = now + timeouts.first_token if streaming else self.total_at
        self.first_seen = not streaming

    def limit(self) -> float:
        """When the wait in progress must end (the loop's clock)."""
        first = not self.first_seen and self.first_at < self.total_at
        return self.first_at if first else self.total_at

    def expired(self) -> UpstreamTimeoutError:
        """The error for the limit in force (built only when it is raised)."""
        if not self.first_seen and self.first_at < self.total_at:
            what = f"no first byte within the first-token timeout of {self.timeouts.first_token}s"
        else:
            what = f"not finished within the total timeout of {self.timeouts.total}s"
        return UpstreamTimeoutError(what, self.model)

    def check(self) -> None:
        """Raise if the total time is spent (called when the consumer resumes a stream)."""
        if self.loop.time() >= self.limit():
            raise self.expired()

    async def run(self, awaitable: Awaitable[T]) -> T:
        try:
            return await limited(awaitable, self.limit(), self.loop)
        except TimeoutError:
            raise self.expired() from None


class StreamReads:
    """A stream's network reads under one limit (the loop's :mod:`~pointsman.deadlines`
    watchdog, not a timer per read: a stream reads once per token): the deadline's limit
    in force, moved to the total limit once the first byte has come. A read in progress
    when it passes is cancelled and raised as the deadline's
    :class:`UpstreamTimeoutError`; a read after it raises at once."""

    __slots__ = ("_dog", "_watch", "deadline")

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self._dog = watchdog(deadline.loop)
        self._watch = self._dog.start(deadline.limit())

    def first_byte(self) -> None:
        """The first byte came: from now on the total limit applies."""
        if not self.deadline.first_seen:
            self.deadline.first_seen = True
            self._watch.when = self.deadline.limit()

    async def read(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next chunk, or None at the body's end."""
        watch = self._watch
        if watch.fired:
            raise self.deadline.expired()
        watch.task = asyncio.current_task(self.deadline.loop)
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            if watch.spent():  # the limit, not the caller, ended it
                raise self.deadline.expired() from None
            raise
        finally:
            watch.spent()  # a cancellation of ours that the read swallowed: taken back
            watch.task = None

    def stop(self) -> None:
        self._dog.stop(self._watch)


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


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers worth passing on (names in lower case): rate-limit state and
    request ids."""
    out = {}
    for name, value in headers.items():
        key = name.lower()
        if key.startswith(("x-ratelimit", "anthropic-ratelimit")) or key in KEPT_HEADERS:
            out[key] = value
    return out


class SseEvent(NamedTuple):
    """One server-sent event (a NamedTuple: a stream makes one per token)."""

    event: str
    data: str


_event = SseEvent._make  # tuple.__new__ from a pair: a third of the keyword constructor


def wire_of(client: httpx.AsyncClient | Wire | None) -> tuple[Wire, bool]:
    """(the wire to call through, whether the adapter owns it): an ``httpx.AsyncClient``
    is wrapped (its owner closes it); none means an own httpx client."""
    if client is None:
        return HttpxWire(), True
    if isinstance(client, httpx.AsyncClient):
        return HttpxWire(client, owns=False), False
    return client, False


class HttpAdapter:
    """The HTTP half of an adapter: opens calls, maps failures, reads JSON and SSE.
    Each call runs under its own :class:`Deadline` (``bounds_calls``: the executor sets
    no second timer around it)."""

    bounds_calls: ClassVar[bool] = True

    def __init__(self, name: str, base_url: str,
                 client: httpx.AsyncClient | Wire | None = None, *,
                 api_key: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.wire, self._owns_wire = wire_of(client)
        self._api_key = api_key or None
        self.extra_headers = dict(headers or {})
        self.where = httpx.URL(self.base_url).host or self.base_url

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    async def aclose(self) -> None:
        if self._owns_wire:
            await self.wire.aclose()

    def stream_batches(self, call: ChatCall) -> AsyncGenerator[list[Chunk], None]:
        """The stream's chunks, those of one network read together (the adapter's own)."""
        raise NotImplementedError

    async def stream(self, call: ChatCall) -> AsyncGenerator[Mapping[str, Any], None]:
        """The stream's chunks one by one (the Provider protocol)."""
        async with aclosing(self.stream_batches(call)) as batches:
            async for batch in batches:
                for chunk in batch:
                    yield chunk

    async def guarded(self, deadline: Deadline, awaitable: Awaitable[T], *,
                      streaming: bool) -> T:
        try:
            return await deadline.run(awaitable)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deadline.model, self.where, streaming=streaming,
                                  redact=self.redact) from None

    def call_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Configured headers, then the adapter's own (auth, version), then content type."""
        return {**self.extra_headers, **headers, "content-type": "application/json"}

    async def open(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                   deadline: Deadline) -> WireResponse:
        """Send a streaming call; return the response (body unread) or raise the mapped
        error (each network wait within the deadline)."""
        payload = jsonio.dumps(body)
        response = await self.guarded(
            deadline, self.wire.post(url, payload, headers, deadline.timeouts),
            streaming=False)
        if response.status < 400:
            return response
        try:
            raw = await self.guarded(deadline, response.read(), streaming=False)
        finally:
            await response.aclose()
        raise self._status_error(response, raw, deadline)

    async def fetch_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                         deadline: Deadline) -> tuple[dict[str, Any], Mapping[str, str]]:
        """Send a call and read its whole JSON answer under one deadline: (body, headers)."""
        return await self.guarded(deadline, self._fetch_json(url, body, headers, deadline),
                                  streaming=False)

    async def _fetch_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                          deadline: Deadline) -> tuple[dict[str, Any], Mapping[str, str]]:
        response = await self.wire.post(url, jsonio.dumps(body), headers, deadline.timeouts)
        try:
            raw = await response.read()
        finally:
            await response.aclose()
        if response.status >= 400:
            raise self._status_error(response, raw, deadline)
        try:
            data = jsonio.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamServerError(f"{self.where} answered with a body that is not a JSON "
                                      "object", deadline.model, response.status)
        return data, response.headers

    def _status_error(self, response: WireResponse, raw: bytes,
                      deadline: Deadline) -> ProviderError:
        message = self.redact(upstream_message(raw[:MAX_ERROR_BODY]))
        error = status_error(response.status, response.headers, message, deadline.model,
                             self.where)
        log.info("%s: %s", self.name, error.message)
        return error

    async def translated(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str],
                         deadline: Deadline, translator: EventTranslator, terminal: str
                         ) -> AsyncGenerator[list[Chunk], None]:
        """The one stream loop of the formats that need translating (Anthropic Messages,
        Responses): IR chunks a batch per network read; a stream that ends before its
        ``terminal`` event is a :class:`~pointsman.errors.StreamBrokenError`."""
        model = deadline.model
        response = await self.open(url, body, headers, deadline)
        try:
            async with aclosing(self.event_batches(response, deadline)) as batches:
                async for events in batches:
                    chunks, error = self._translate(events, translator, model)
                    if chunks:
                        yield chunks
                    if error is not None:
                        raise error
                    if translator.done:
                        await drain(batches)
                        return
            log.info("%s: stream for %s ended without %s", self.name, model, terminal)
            raise StreamBrokenError(f"the stream from {self.where} ended without {terminal}",
                                    model)
        finally:
            await response.aclose()

    def _translate(self, events: list[SseEvent], translator: EventTranslator, model: str
                   ) -> tuple[list[Chunk], StreamBrokenError | None]:
        """(the IR chunks of ``events`` up to the terminal event, the error that ended
        them)."""
        chunks: list[Chunk] = []
        for event in events:
            try:
                chunks.extend(translator.feed(decode_event(event, model, self.where)))
            except StreamBrokenError as exc:
                return chunks, exc
            if translator.done:
                break
        return chunks, None

    async def event_batches(self, response: WireResponse,
                            deadline: Deadline) -> AsyncGenerator[list[SseEvent], None]:
        """The server-sent events of a response, a list per network read (each read within
        the deadline): the events that arrived together are handled together."""
        chunks = response.chunks()
        parser = SseParser()
        reads = StreamReads(deadline)
        try:
            while True:
                try:
                    chunk = await reads.read(chunks)
                except httpx.HTTPError as exc:
                    raise transport_error(exc, deadline.model, self.where, streaming=True,
                                          redact=self.redact) from None
                batch = parser.feed(parser.end() if chunk is None else chunk)
                if batch:
                    reads.first_byte()
                    yield batch
                    deadline.check()
                if chunk is None:
                    return
        finally:
            reads.stop()


class EventTranslator(Protocol):
    """A wire format's stream events in, IR chunks out (one per stream); ``done`` once the
    format's terminal event has come."""

    done: bool

    def feed(self, event: Mapping[str, Any]) -> list[Any]: ...


def bearer_auth(api_key: str | None, api_key_header: str | None) -> dict[str, str]:
    """The key's header for an OpenAI-style endpoint: ``Authorization: Bearer <key>``, or
    the key as it is in ``api_key_header`` (Azure's ``api-key``)."""
    if not api_key:
        return {}
    header = api_key_header or "Authorization"
    return {header: f"Bearer {api_key}" if header.lower() == "authorization" else api_key}


def wants_usage(body: Mapping[str, Any]) -> bool:
    """Whether an IR body asks for the usage chunk (``stream_options.include_usage``)."""
    options = body.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


class SseParser:
    """Server-sent events from network chunks: lines end in LF, CRLF or CR; a blank line
    ends an event; ``data`` lines join with LF; comments and unknown fields are skipped."""

    def __init__(self) -> None:
        self._rest = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buffer = self._rest + chunk
        if b"\r" not in buffer and not self._data and not self._event:
            return self._feed_lf(buffer)
        return self._feed_lines(buffer)

    def _feed_lf(self, buffer: bytes) -> list[SseEvent]:
        """The common case (LF line ends, between events): split on blank lines, and take a
        lone ``data: `` line as the whole event; anything else goes line by line."""
        blocks = buffer.split(b"\n\n")
        rest = self._rest = blocks.pop()  # an unfinished event, kept whole until it ends
        if buffer.count(b"\n", 0, len(buffer) - len(rest)) == 2 * len(blocks) and all(
                block[:6] == b"data: " for block in blocks):  # each a lone data line
            return [_event(("", str(block[6:], "utf-8", "replace"))) for block in blocks]
        out: list[SseEvent] = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                out.append(SseEvent("", block[6:].decode("utf-8", "replace")))
                continue
            for line in (*block.split(b"\n"), b""):
                event = self._line(line.decode("utf-8", "replace"))
                if event is not None:
                    out.append(event)
        return out

    def _feed_lines(self, buffer: bytes) -> list[SseEvent]:
        keep = 1 if buffer.endswith(b"\r") else 0  # it may be half of a CRLF
        lines = buffer[:len(buffer) - keep].splitlines(keepends=True)
        self._rest = buffer[len(buffer) - keep:]
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._rest = lines.pop() + self._rest
        out: list[SseEvent] = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n").decode("utf-8", "replace"))
            if event is not None:
                out.append(event)
        return out

    def end(self) -> bytes:
        """What to feed when the body ends: the LF a held-back CR was waiting for."""
        return b"\n" if self._rest.endswith(b"\r") else b""

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            event, data = self._event, self._data
            self._event, self._data = "", []
            return SseEvent(event, "\n".join(data)) if data else None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None


async def drain(batches: AsyncGenerator[list[SseEvent], None]) -> None:
    """Read what follows a stream's terminator (normally only the end of the body), so the
    connection goes back to the pool instead of being closed. An upstream that keeps
    sending is given up on after a few reads or :data:`DRAIN_S` (the connection closes)."""
    loop = asyncio.get_running_loop()
    try:
        await limited(_read_on(batches), loop.time() + DRAIN_S, loop)
    except (StopAsyncIteration, TimeoutError, ProviderError):
        return


async def _read_on(batches: AsyncGenerator[list[SseEvent], None]) -> None:
    for _ in range(DRAIN_READS):
        await anext(batches)


def decode_event(event: SseEvent, model: str, where: str) -> dict[str, Any]:
    try:
        data = orjson.loads(event.data)
    except ValueError:
        data = None
    if data.__class__ is not dict:
        raise StreamBrokenError(f"malformed stream event from {where}: {event.data[:80]!r}",
                                model)
    return data
