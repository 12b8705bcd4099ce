"""The Responses door's endpoints: ``POST /v1/responses`` (stored responses and
``previous_response_id`` around the shared lifecycle), ``GET`` and ``DELETE
/v1/responses/{id}``.

Storing: a request's ``store: true`` stores its response (a 400 when the gateway has no
request-log database to keep it in); an omitted ``store`` stores it only when
``gateway.responses.store`` is on (OpenAI's own default is true, so a plain SDK call is
never refused for it); ``store: false`` never does. A stored response belongs to the key
that made it: only that key can read, continue or delete it (any other key gets a 404, as
for an id that never existed or has expired after ``gateway.responses.ttl_s``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.doors.responses import ResponsesDoor, continue_input, conversation_items
from pointsman.errors import InputError, PointsmanError, RouteNotFoundError
from pointsman.gateway.auth import Principal
from pointsman.gateway.endpoints import Prepared, authenticate, door_endpoint
from pointsman.gateway.errors import door_error
from pointsman.gateway.exchange import Keep
from pointsman.gateway.runtime import Gateway
from pointsman.stores.responses import ResponseStore

DOOR = ResponsesDoor()


def _store(gw: Gateway, body: Mapping[str, Any]) -> ResponseStore | None:
    """The store this request's response goes to, or None (not stored)."""
    wanted = body.get("store")
    if wanted is not None and not isinstance(wanted, bool):
        raise InputError(f"'store' must be a boolean, got {type(wanted).__name__}", "store")
    if wanted is True and gw.responses is None:
        raise InputError("'store': true needs a database to keep responses in: this gateway "
                         "has none (gateway.request_log is off); send store: false", "store")
    if wanted is False or (wanted is None and not gw.config.gateway.responses.store):
        return None
    return gw.responses


async def _stored(gw: Gateway, principal: Principal, response_id: str) -> dict[str, Any]:
    store = gw.responses
    found = None if store is None else await store.get(response_id, principal.name, time.time())
    if found is None:
        raise RouteNotFoundError(f"no stored response {response_id!r} (it never existed, has "
                                 "expired, or belongs to another key)", "previous_response_id")
    return {"items": found.items, "response": found.response}


async def _continued(gw: Gateway, principal: Principal, body: dict[str, Any]
                     ) -> dict[str, Any]:
    previous = body.get("previous_response_id")
    if previous is None:
        return body
    if not isinstance(previous, str) or not previous:
        raise InputError("'previous_response_id' must be a non-empty string",
                         "previous_response_id")
    stored = await _stored(gw, principal, previous)
    return continue_input(stored["items"], body)


def _keeper(gw: Gateway, store: ResponseStore, principal: Principal,
            body: Mapping[str, Any]) -> Keep:
    async def keep(response: Mapping[str, Any]) -> None:
        answer = dict(response)
        await store.put(str(answer["id"]), principal.name, conversation_items(body, answer),
                        answer, time.time() + gw.config.gateway.responses.ttl_s)
    return keep


async def _prepare(gw: Gateway, principal: Principal, body: dict[str, Any]) -> Prepared:
    """The stored conversation a request continues, and where its answer is kept."""
    store = _store(gw, body)
    full = await _continued(gw, principal, body)
    previous = body.get("previous_response_id")
    return Prepared(full, _keeper(gw, store, principal, full) if store is not None else None,
                    previous if isinstance(previous, str) else None)


create_response = door_endpoint(DOOR, _prepare)


async def get_response(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        principal = authenticate(gw, request)
        stored = await _stored(gw, principal, request.path_params["response_id"])
    except PointsmanError as exc:
        return door_error(DOOR, exc)
    return JSONResponse(stored["response"])


async def delete_response(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    response_id = request.path_params["response_id"]
    try:
        principal = authenticate(gw, request)
        deleted = gw.responses is not None and await gw.responses.delete(response_id,
                                                                         principal.name)
        if not deleted:
            raise RouteNotFoundError(f"no stored response {response_id!r}")
    except PointsmanError as exc:
        return door_error(DOOR, exc)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})
