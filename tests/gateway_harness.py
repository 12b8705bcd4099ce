"""Serve an ASGI app with a real uvicorn server on 127.0.0.1:0 in a thread (for tests that
drive the gateway with real HTTP clients such as the official ``openai`` SDK)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def running(app: Any, config: uvicorn.Config | None = None) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:<port>``) while the app is served (with
    ``config``, uvicorn's settings for it, when given)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config or uvicorn.Config(app, log_level="error", access_log=False,
                                                     lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def anthropic_message(url: str, key: str, args: Any, stream: bool) -> tuple[Any, Any]:
    """(the final Message, the response headers) of one Messages call through the
    ``anthropic`` SDK, streamed or not (the client closed after it)."""
    import anthropic

    with anthropic.Anthropic(base_url=url, api_key=key, max_retries=0) as client:
        if stream:
            with client.messages.stream(**args) as events:
                return events.get_final_message(), events.response.headers
        raw = client.messages.with_raw_response.create(**args)
        return raw.parse(), raw.headers
