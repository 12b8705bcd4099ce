"""Slow clients against the gateway (with the uvicorn settings ``pointsman serve`` uses):
``python benchmarks/slow_clients.py --clients 1000``. Opens that many connections that
stall (half send a request head and part of a body, then nothing; half trickle a head
without its end), then times ``GET /health`` and a normal chat request while they are all
connected, and finally counts how the gateway ended the stalled connections (408 after
``gateway.body_timeout_s`` / ``header_timeout_s``)."""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import time
from contextlib import ExitStack

import httpx

from pointsman.cli.serve import raise_open_files_limit, uvicorn_config
from pointsman.config import PointsmanConfig
from pointsman.gateway.app import create_app
from pointsman.testing import fuzz
from pointsman.testing.upstream import UpstreamStub

sys.path.insert(0, "tests")
from gateway_harness import running

UPLOAD = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
          + fuzz.KEY.encode() + b"\r\ncontent-type: application/json\r\n"
          b"content-length: 100000\r\n\r\n{\"model\": ")
HEAD = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: "


def stall(port: int, n: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(UPLOAD if n % 2 == 0 else HEAD)
    return sock


def ended(sock: socket.socket) -> str:
    try:
        data = sock.recv(64)
    except OSError as exc:
        return type(exc).__name__
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="gateway.body_timeout_s and header_timeout_s for the run")
    args = parser.parse_args()
    raise_open_files_limit(2 * args.clients + 512)
    with UpstreamStub() as stub, ExitStack() as stack:
        base = fuzz.gateway_config(stub.url, stub.base_url)
        cfg = PointsmanConfig.model_validate({**base.model_dump(), "gateway": {
            **base.gateway.model_dump(), "body_timeout_s": args.timeout,
            "header_timeout_s": args.timeout}})
        app = create_app(cfg)
        url = stack.enter_context(running(app, uvicorn_config(app, cfg.gateway, "error")))
        port = int(url.rsplit(":", 1)[1])
        started = time.perf_counter()
        slow = [stack.enter_context(stall(port, n)) for n in range(args.clients)]
        print(f"{len(slow)} slow clients connected in {time.perf_counter() - started:.2f} s")
        time.sleep(1.0)  # let the server accept them all (the kernel already has)
        times = []
        for _ in range(50):  # as a load balancer checks: a new connection each time
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
            conn.close()
            times.append((time.perf_counter() - t) * 1000)
        with httpx.Client(base_url=url, timeout=30) as client:
            t = time.perf_counter()
            chat = client.post("/v1/chat/completions", headers={
                "authorization": f"Bearer {fuzz.KEY}"}, json={
                "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            chat_ms = (time.perf_counter() - t) * 1000
        print(f"/health with {len(slow)} slow clients: p50 {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms (50 calls, a new connection each)")
        print(f"chat request: {chat.status_code} in {chat_ms:.1f} ms")
        t = time.perf_counter()
        endings: dict[str, int] = {}
        for sock in slow:
            end = ended(sock)
            endings[end] = endings.get(end, 0) + 1
        print(f"the slow clients were answered {endings} within "
              f"{time.perf_counter() - started:.1f} s of connecting")
        return 0 if max(times) < 100 and chat.status_code == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
