"""The doors' HTTP endpoints: authenticate, read, translate into the IR, then hand the
request to its :class:`~pointsman.gateway.exchange.Exchange`. The same steps on every door
(``POST /v1/chat/completions``, ``/v1/messages``, ``/v1/responses``); what differs is the
door's translator."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.doors.base import PRIVATE, Door
from pointsman.errors import PointsmanError
from pointsman.gateway.auth import Principal
from pointsman.gateway.errors import door_error
from pointsman.gateway.exchange import Exchange, Keep
from pointsman.gateway.parse import parse_chat, read_json
from pointsman.gateway.runtime import Gateway

Endpoint = Callable[[Request], Awaitable[Response]]


def authenticate(gw: Gateway, request: Request) -> Principal:
    headers = request.headers
    authorization = headers.get("authorization")
    return gw.keys.authenticate(authorization,
                                None if authorization else headers.get("x-api-key"))


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a door's own step before translation made of a body (the Responses door:
    the stored conversation prepended, the store to keep the answer in, the session)."""

    body: dict[str, Any]
    keep: Keep | None = None
    session: str | None = None


Prepare = Callable[[Gateway, Principal, dict[str, Any]], Awaitable[Prepared]]


def door_endpoint(door: Door, prepare: Prepare | None = None) -> Endpoint:
    """A door's endpoint: authenticate, read, (``prepare``,) translate, then the
    request's :class:`Exchange`."""
    async def endpoint(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        started = time.perf_counter()
        request_id = gw.new_request_id()
        try:  # not a request yet: answered in the door's shape, counted, not logged
            principal = authenticate(gw, request)
            body = await read_json(request, gw.config.gateway.max_body_bytes,
                                   gw.config.gateway.body_timeout_s)
            ready = await prepare(gw, principal, body) if prepare is not None else None
            ir = door.to_chat(body if ready is None else ready.body, request.headers)
            if ready is not None and ready.session is not None:  # for session affinity
                ir.setdefault(PRIVATE, {})["session"] = ready.session
            chat = parse_chat(request, ir, principal.owner, trust_headers=principal.admin,
                              door=door.name)
        except PointsmanError as exc:
            gw.metrics.error(exc.code, door.name)
            return door_error(door, exc, {"x-pointsman-request-id": request_id})
        keep = ready.keep if ready is not None else None
        return await Exchange(gw, door, principal, chat, body, request_id, started,
                              keep).run()
    return endpoint


async def count_tokens_endpoint(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the input tokens of a Messages request, estimated
    offline (no upstream call, nothing charged)."""
    from pointsman.doors.messages import MessagesDoor, count_tokens

    gw: Gateway = request.app.state.gateway
    try:
        authenticate(gw, request)
        body = await read_json(request, gw.config.gateway.max_body_bytes,
                               gw.config.gateway.body_timeout_s)
        tokens = count_tokens(body)
    except PointsmanError as exc:
        return door_error(MessagesDoor(), exc)
    return JSONResponse({"input_tokens": tokens})
