"""Slow and hostile clients cannot hold the gateway: stalled uploads get 408 after
``gateway.body_timeout_s`` while ``/health`` and normal requests are served; a request head
over ``gateway.max_header_bytes`` gets 431, one trickled past ``header_timeout_s`` 408.
The gateway runs with the uvicorn settings ``pointsman serve`` uses."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from gateway_harness import running
from pointsman.cli.serve import uvicorn_config
from pointsman.config import PointsmanConfig
from pointsman.gateway.app import create_app
from pointsman.testing import fuzz
from pointsman.testing.upstream import UpstreamStub

LIMITS = {"body_timeout_s": 2.0, "header_timeout_s": 2.0, "max_header_bytes": 8192}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, int]]:
    with UpstreamStub() as stub:
        base = fuzz.gateway_config(stub.url, stub.base_url)
        cfg = PointsmanConfig.model_validate({
            **base.model_dump(), "gateway": {**base.gateway.model_dump(), **LIMITS}})
        app = create_app(cfg)
        with running(app, uvicorn_config(app, cfg.gateway, "error")) as url:
            yield url, int(url.rsplit(":", 1)[1])


def _stalled_upload(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                 b"authorization: Bearer " + fuzz.KEY.encode() + b"\r\n"
                 b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"model\":")
    return sock


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            break
        head += data
    return int(head.split(b" ", 2)[1]) if head else 0


def test_stalled_uploads_do_not_block_health_or_requests_and_time_out(
        gateway: tuple[str, int]) -> None:
    url, port = gateway
    with ExitStack() as stack:
        stalled = [stack.enter_context(_stalled_upload(port)) for _ in range(50)]
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/health").status_code == 200
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            answer = client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {fuzz.KEY}"})
            assert answer.status_code == 200
        assert [_status(s) for s in stalled] == [408] * 50


def test_oversized_request_head_is_431(gateway: tuple[str, int]) -> None:
    _, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-junk: " + b"a" * 20_000 + b"\r\n")
        assert _status(sock) == 431


def test_trickled_request_head_is_408(gateway: tuple[str, int]) -> None:
    _, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")  # and never the blank line
        assert _status(sock) == 408
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:  # says nothing
        assert _status(sock) == 408


def test_a_request_slower_than_the_head_timeout_is_answered() -> None:
    """The head timer runs from a new connection's start, but only the head is timed: a
    request whose answer takes longer than ``header_timeout_s`` is answered, not 408."""
    with UpstreamStub() as stub:
        base = fuzz.gateway_config(stub.url, stub.base_url)
        cfg = PointsmanConfig.model_validate({
            **base.model_dump(), "gateway": {**base.gateway.model_dump(),
                                             "header_timeout_s": 0.5}})
        stub.behave("*", delay_ms=1500)
        app = create_app(cfg)
        with running(app, uvicorn_config(app, cfg.gateway, "error")) as url, \
                httpx.Client(base_url=url, timeout=30) as client:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(2):  # the first on a new connection, the next on the kept one
                answer = client.post("/v1/chat/completions", json=body,
                                     headers={"authorization": f"Bearer {fuzz.KEY}"})
                assert answer.status_code == 200


def _health(sock: socket.socket) -> bytes:
    """One keep-alive ``GET /health`` on ``sock``: the whole response."""
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(4096)
        assert chunk, "the connection closed mid-response"
        data += chunk
    return data


def test_idle_keep_alive_connections_close_and_busy_ones_stay() -> None:
    """``gateway.keepalive_timeout_s`` with the gateway's own keep-alive timer (armed once
    per connection, re-armed when it fires early): a connection idle past it is closed; one
    that keeps asking, each request well within it, stays open past several limits."""
    with UpstreamStub() as stub:
        base = fuzz.gateway_config(stub.url, stub.base_url)
        cfg = PointsmanConfig.model_validate({
            **base.model_dump(), "gateway": {**base.gateway.model_dump(),
                                             "keepalive_timeout_s": 2.0}})
        app = create_app(cfg)
        with running(app, uvicorn_config(app, cfg.gateway, "error")) as url:
            port = int(url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=30) as busy:
                for _ in range(14):  # ~4.2 s: past two keep-alive limits, never idle 2 s
                    assert b" 200 " in _health(busy)
                    time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as idle:
                assert b" 200 " in _health(idle)
                assert idle.recv(4096) == b""  # closed by the server (after ~2 s)
