"""``GET /v1/models`` (the catalog plus the virtual ``auto`` and router names) and
``GET /health``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.errors import PointsmanError
from pointsman.gateway.errors import error_response
from pointsman.gateway.runtime import Gateway

CREATED = 1_700_000_000


def _entry(name: str, owner: str, **extra: Any) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": owner, **extra}


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        principal = gw.keys.authenticate(request.headers.get("authorization"))
    except PointsmanError as exc:
        return error_response(exc)
    data = [_entry("auto", "pointsman", description="routed by the configured strategy")]
    data += [_entry(name, "pointsman", description="threshold router (RouteLLM style)")
             for name in gw.virtual_models()]
    data += [_entry(name, "pointsman", description="quality-check cascade (FrugalGPT)")
             for name in gw.cascade_models()]
    data += [_entry(spec.name, spec.provider, tier=spec.tier,
                    context_window=spec.context_window,
                    capabilities=sorted(spec.capabilities))
             for spec in gw.catalog]
    data = [d for d in data if principal.may_use(d["id"])]
    return JSONResponse({"object": "list", "data": data})


async def health(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    cooling = sorted(await gw.cooldown.cooling())
    return JSONResponse({"status": "ok", "cooling_down": cooling,
                         "request_log": gw.log is not None})
