"""A canned OpenAI-compatible upstream for measuring the gateway's scaling on a small machine.

Run: .venv/bin/python benchmarks/canned_upstream.py --port 9002 [--tokens 20]

On a 2-core machine the upstream stub (pointsman.testing, uvicorn + Starlette, a write per
streamed token) and wrk share one core, and streaming through the stub alone nearly fills
it: two gateway workers then fight the stub for that core, and the benchmark measures the
stub. This upstream answers every ``POST`` with bytes prepared at start (a chat completion,
or, when the body asks ``"stream":true``, the whole 20-token event stream with its usage
chunk and ``[DONE]`` in one sized body): an asyncio protocol and the httptools parser, a
few µs per request, so the gateway's workers get the cores. Not a stand-in for the stub in
tests (it checks nothing, injects nothing); only ``bench_workers.py --upstream canned``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools
import uvloop


def answers(tokens: int) -> tuple[bytes, bytes]:
    """(the plain answer, the streamed one): whole HTTP responses."""
    base = {"id": "chatcmpl-canned", "created": 0, "model": "canned"}
    usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
    text = " ".join(["word"] * tokens)
    plain = json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text},
         "finish_reason": "stop"}]}).encode()
    chunk = {**base, "object": "chat.completion.chunk"}
    events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                           "content": ""}}]}]
    events += [{**chunk, "choices": [{"index": 0, "delta": {"content": "word "}}]}
               for _ in range(tokens)]
    events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**chunk, "choices": [], "usage": usage})
    sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    sse += b"data: [DONE]\n\n"
    return (_response(b"application/json", plain), _response(b"text/event-stream", sse))


def _response(kind: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
            % (kind, len(body))) + body


class Canned(asyncio.Protocol):
    plain = b""
    stream = b""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        if self.transport is not None:
            streamed = b'"stream":true' in body or b'"stream": true' in body
            self.transport.write(self.stream if streamed else self.plain)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()
    Canned.plain, Canned.stream = answers(args.tokens)
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
