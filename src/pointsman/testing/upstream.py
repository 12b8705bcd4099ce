"""A local upstream: the OpenAI, Anthropic and OpenAI Responses wire formats over real
HTTP on 127.0.0.1.

    POST /v1/chat/completions   OpenAI Chat Completions (streaming or not, usage,
                                stream_options.include_usage, tool calls, logprobs)
    POST /v1/messages           Anthropic Messages (streaming or not, tool_use)
    POST /v1/responses          OpenAI Responses (streaming or not, function_call items,
                                reasoning items, output_text logprobs; answers and events
                                that the openai SDK's models accept)
    GET  /v1/models             the models seen or configured
    POST /_stub/behavior        {"model": "gpt-4o-mini", "statuses": [429], ...}  ("*": all)
    GET  /_stub/stats           requests per model, the last body and headers per model
    POST /_stub/reset           forget behaviours and counters

Answers are deterministic (see :mod:`pointsman.testing.stub_state`); what goes wrong, and
when, is set per upstream model name with :class:`~pointsman.testing.stub_state.Behavior`
(the same behaviours on every wire format, cached and reasoning token counts included).

From Python::

    with UpstreamStub() as stub:              # or: async with UpstreamStub() as stub
        stub.behave("gpt-4o-mini", statuses=[429, 500], retry_after=2)
        ...  # point an endpoint at stub.base_url  (http://127.0.0.1:<port>/v1)
        assert stub.requests("gpt-4o-mini") == 3

From a shell, for benchmarks in a separate process::

    python -m pointsman.testing.upstream --port 9001 --delay-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pointsman.gateway.server import fast_http, fast_loop
from pointsman.testing.stub_state import Behavior, StubState, Turn
from pointsman.testing.stub_wire import (
    WireFormat,
    anthropic_wire,
    injected_status,
    openai_wire,
    responses_wire,
)

POLL_S = 0.05
SHORT_S = 0.5


async def pause(state: StubState, seconds: float, request: Request | None = None) -> bool:
    """Sleep; False when the stub is stopping or the client went away. Short waits are
    one plain sleep (cheap under load); long ones poll, so they end at shutdown."""
    if seconds <= SHORT_S:
        await asyncio.sleep(seconds)
        return not state.stopping.is_set()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if state.stopping.is_set():
            return False
        if request is not None and await request.is_disconnected():
            return False
        await asyncio.sleep(min(POLL_S, left))
    return not state.stopping.is_set()


class EventStream(Response):
    """Server-sent events; a ``cut`` stream ends without completing the body (the server
    then closes the connection), and a stream the client leaves stops at once."""

    def __init__(self, events: AsyncIterator[bytes], cut: bool) -> None:
        super().__init__(media_type="text/event-stream")
        self.events = events
        self.cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"),
                                (b"cache-control", b"no-cache")]})
        try:
            async for event in self.events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except OSError:
            return
        if not self.cut:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class StubApp:
    """The stub's endpoints over a :class:`StubState`."""

    def __init__(self, state: StubState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._endpoint(openai_wire), methods=["POST"]),
            Route("/v1/messages", self._endpoint(anthropic_wire), methods=["POST"]),
            Route("/v1/responses", self._endpoint(responses_wire), methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/_stub/behavior", self.behavior, methods=["POST"]),
            Route("/_stub/stats", self.stats, methods=["GET"]),
            Route("/_stub/reset", self.reset, methods=["POST"]),
        ]

    def _endpoint(self, wire: WireFormat) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.answer(wire, request)
        return endpoint

    async def answer(self, wire: WireFormat, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return wire.error(400, "the body is not a JSON object")
        model = str(body.get("model") or "")
        peer = request.client
        turn = self.state.take_turn(model, body, dict(request.headers),
                                    f"{peer.host}:{peer.port}" if peer else None)
        refused = wire.check(body, request.headers, self.state.api_key)
        if refused is not None:
            return refused
        return await self._play(wire, request, body, turn)

    async def _play(self, wire: WireFormat, request: Request, body: dict[str, Any],
                    turn: Turn) -> Response:
        behavior = turn.behavior
        waited = await pause(self.state, behavior.delay_ms / 1000, request)
        if behavior.hang:
            await pause(self.state, float("inf"), request)
            return wire.error(503, "the stub stopped while hanging")
        if not waited:
            return wire.error(503, "the stub is stopping")
        if turn.status is not None:
            return injected_status(wire, turn.status, behavior)
        plan = wire.plan(body, behavior, turn.number)
        if not body.get("stream"):
            return JSONResponse(wire.complete(body, plan, turn.number, behavior))
        events = self._paced(wire.events(body, plan, turn.number, behavior), behavior, request)
        return EventStream(events, cut=behavior.cut_after is not None
                           and behavior.cut_mode == "reset")

    async def _paced(self, events: Sequence[tuple[bool, bytes]], behavior: Behavior,
                     request: Request) -> AsyncIterator[bytes]:
        for is_token, data in events:
            if is_token and behavior.token_delay_ms and not await pause(
                    self.state, behavior.token_delay_ms / 1000, request):
                return
            if self.state.stopping.is_set():
                return
            yield data

    async def models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"}
                for m in self.state.models()]
        return JSONResponse({"object": "list", "data": data})

    async def behavior(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            model = str(body.pop("model"))
            made = self.state.behave(model, **body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": {"message": f"bad behaviour: {exc}"}}, 400)
        return JSONResponse({"model": model, "behavior": asdict(made)})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})


def create_app(state: StubState) -> Starlette:
    return Starlette(routes=StubApp(state).routes())


class UpstreamStub:
    """Runs the stub on uvicorn in a background thread (port 0 unless told otherwise)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 default: Behavior | None = None, api_key: str | None = None) -> None:
        self.state = StubState(default, api_key)
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the Anthropic adapter accepts this or base_url)."""
        if self._socket is None:
            raise RuntimeError("the upstream stub is not running")
        return f"http://{self.host}:{self._socket.getsockname()[1]}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, an OpenAI-style base URL."""
        return f"{self.url}/v1"

    def start(self) -> UpstreamStub:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP; without it Nagle + delayed ACK add ~40 ms to every answer.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        self._socket = sock
        self.state.stopping.clear()
        config = uvicorn.Config(create_app(self.state), log_level="warning", lifespan="off",
                                access_log=False, http="h11", ws="none",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="pointsman-upstream-stub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the upstream stub did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def behave(self, model: str, **changes: Any) -> Behavior:
        """Set fields of one model's behaviour (``"*"``: every model without its own)."""
        return self.state.behave(model, **changes)

    def require_key(self, api_key: str | None) -> None:
        """Refuse (401) calls without this key; None accepts any. ``reset`` undoes it."""
        self.state.api_key = api_key

    def reset(self) -> None:
        """Forget behaviours, counters and :meth:`require_key`."""
        self.state.reset()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def connections(self) -> int:
        """How many TCP connections have carried requests (since start or :meth:`reset`)."""
        return int(self.state.stats()["connections"])

    def requests(self, model: str) -> int:
        entry = self.state.stats()["models"].get(model)
        return int(entry["requests"]) if entry else 0

    def last_request(self, model: str) -> dict[str, Any] | None:
        entry = self.state.stats()["models"].get(model)
        return entry["last_request"] if entry else None

    def last_headers(self, model: str) -> dict[str, str]:
        entry = self.state.stats()["models"].get(model)
        return dict(entry["last_headers"]) if entry else {}

    def __enter__(self) -> UpstreamStub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> UpstreamStub:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pointsman.testing.upstream",
                                     description="A local OpenAI/Anthropic/Responses "
                                                 "upstream stub.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="wait before each response (streams: before the headers)")
    parser.add_argument("--token-delay-ms", type=float, default=0.0,
                        help="wait before each streamed token")
    parser.add_argument("--tokens", type=int, default=None, help="answer length in tokens")
    parser.add_argument("--api-key", default=None, help="require this key (default: any)")
    args = parser.parse_args(argv)
    default = Behavior(delay_ms=args.delay_ms, token_delay_ms=args.token_delay_ms,
                       tokens=args.tokens)
    app = create_app(StubState(default, args.api_key))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                loop=fast_loop(), http=fast_http(), ws="none", lifespan="off",
                timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
