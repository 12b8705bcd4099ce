"""One shared upstream client serves every caller: cookies set by an upstream are dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest

from pointsman.config import load_config
from pointsman.providers.base import ChatCall
from pointsman.providers.config import build_providers
from pointsman.router import resolve_catalog

ANSWER = (b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
          b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
          b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')


class CookieSettingUpstream:
    """A loopback HTTP/1.1 server that answers every request with a ``Set-Cookie``."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def aclose(self) -> None:
        for writer in self.writers:
            writer.close()
            await writer.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                           if line.lower().startswith("content-length:")), 0)
            await reader.readexactly(length)
            self.requests.append(head.lower())
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"set-cookie: session=caller-one; Path=/\r\n"
                         b"content-length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
            await writer.drain()


@pytest.mark.parametrize("transport", ["auto", "aiohttp", "httpx"])
def test_upstream_cookies_never_reach_the_next_request(
        transport: Literal["auto", "aiohttp", "httpx"], tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        upstream = CookieSettingUpstream()
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        file = tmp_path / "pointsman.yaml"
        file.write_text(f"""
providers:
  endpoints:
    openai: {{base_url: "http://127.0.0.1:{port}/v1", api_key: sk-test}}
  pool: {{transport: {transport}}}
""", "utf-8")
        config = load_config(file)
        providers = build_providers(config, resolve_catalog(config), environ={}, closed=True)
        try:
            [deployment] = providers.deployments("gpt-4o-mini")
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(2):
                await deployment.provider.complete(ChatCall(body))
        finally:
            await providers.aclose()
            await upstream.aclose()
            server.close()
            await server.wait_closed()
        return upstream.requests

    requests = asyncio.run(scenario())
    assert len(requests) == 2
    assert all("cookie:" not in head for head in requests)
