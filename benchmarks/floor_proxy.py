"""The floor of the gateway's stack, for ``bench_gateway.py``: a pass-through proxy on the
same server and client (uvicorn with uvloop and httptools, Starlette, aiohttp) that
forwards ``POST /v1/chat/completions`` untouched, with no routing, accounting or log.

Run: python benchmarks/floor_proxy.py --port P --upstream http://127.0.0.1:S/v1
"""

from __future__ import annotations

import argparse

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(upstream: str) -> Starlette:
    sessions: list[aiohttp.ClientSession] = []

    async def chat(request: Request) -> Response:
        if not sessions:
            sessions.append(aiohttp.ClientSession())
        async with sessions[0].post(f"{upstream}/chat/completions", data=await request.body(),
                                    headers={"content-type": "application/json"}) as answer:
            body = await answer.read()
            return Response(body, answer.status, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/health", health)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.upstream), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
