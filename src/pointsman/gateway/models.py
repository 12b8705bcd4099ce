"""``GET /v1/models`` (the catalog plus the virtual ``auto`` and router names) and
``GET /health``."""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.errors import PointsmanError, UnknownModelError
from pointsman.gateway.endpoints import authenticate
from pointsman.gateway.errors import error_response
from pointsman.gateway.runtime import Gateway

CREATED = 1_700_000_000


def _entry(name: str, owner: str, **extra: Any) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": owner, **extra}


def _models(gw: Gateway) -> list[dict[str, Any]]:
    data = [_entry("auto", "pointsman", description="routed by the configured strategy")]
    data += [_entry(name, "pointsman", description="threshold router (RouteLLM style)")
             for name in gw.virtual_models()]
    data += [_entry(name, "pointsman", description="quality-check cascade (FrugalGPT)")
             for name in gw.cascade_models()]
    data += [_entry(spec.name, spec.provider, tier=spec.tier,
                    context_window=spec.context_window,
                    capabilities=sorted(spec.capabilities))
             for spec in gw.catalog]
    return data


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        principal = authenticate(gw, request)
    except PointsmanError as exc:
        return error_response(exc)
    data = [d for d in _models(gw) if principal.may_use(d["id"])]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{id}``: one entry of the list, or a 404 (also for a model this key
    may not use: it cannot probe what exists)."""
    gw: Gateway = request.app.state.gateway
    name = request.path_params["model"]
    try:
        principal = authenticate(gw, request)
        found = [d for d in _models(gw) if d["id"] == name and principal.may_use(name)]
        if not found:
            raise UnknownModelError(f"unknown model {name!r}: GET /v1/models lists them",
                                    param="model")
    except PointsmanError as exc:
        return error_response(exc)
    return JSONResponse(found[0])


async def health(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    cooling = sorted(await gw.cooldown.cooling())
    return JSONResponse({"status": "ok", "cooling_down": cooling,
                         "request_log": gw.log is not None, "pid": os.getpid()})
