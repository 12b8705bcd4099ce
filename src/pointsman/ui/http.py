"""The dashboard's HTTP side: the page and its static files at ``/ui``, and a read-only JSON
API at ``/ui/api/...`` for admin keys.

Security, since the page shows untrusted text (prompts, model names, metadata):

- the key travels only as ``Authorization: Bearer`` on API calls (the page keeps it in
  ``sessionStorage``); never in a URL or a cookie, so a cross-site page cannot make the
  browser send it, and the API has no state-changing call at all;
- every response carries a strict Content-Security-Policy (scripts and styles from this
  origin only, no inline code, no framing), ``nosniff`` and ``no-referrer``; the page and
  its scripts build the DOM with ``textContent``, never HTML from data;
- the static files are a fixed list read from the package, not a path from the URL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pointsman.budget.http import is_admin
from pointsman.errors import AuthError, PermissionDeniedError, PointsmanError, http_status
from pointsman.gateway.endpoints import authenticate
from pointsman.gateway.runtime import Gateway
from pointsman.jsonio import tidy_floats
from pointsman.ui import live
from pointsman.ui.queries import FILTERS, LogReader

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
           "referrer-policy": "no-referrer", "x-frame-options": "DENY",
           "cross-origin-opener-policy": "same-origin",
           "cross-origin-resource-policy": "same-origin", "cache-control": "no-store"}
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
          "uplot.iife.min.js": "text/javascript; charset=utf-8",
          "uplot.min.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
WINDOWS_S = (900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
BUCKETS = 60  # points per chart
Handler = Callable[[Request, Gateway, LogReader], Awaitable[Any]]


@cache
def _asset(name: str) -> bytes:
    return resources.files("pointsman.ui").joinpath("static", name).read_bytes()


def _secured(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


async def page(request: Request) -> Response:
    """``GET /ui``: the page (no data in it: everything comes from the API, with the key)."""
    return _secured(Response(_asset("index.html"), media_type="text/html; charset=utf-8"))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    media = STATIC.get(name)
    if media is None:
        return _error(404, "no such file", "not_found")
    return _secured(Response(_asset(name), media_type=media))


def _error(status: int, message: str, code: str) -> Response:
    return _secured(JSONResponse({"error": {"message": message, "code": code}},
                                 status_code=status))


def check_admin(gw: Gateway, request: Request) -> None:
    """Admin keys only (``gateway.keys`` with ``admin: true``, keys-database admin keys,
    ``budgets.admin_keys``); an open loopback gateway lets anyone in, as ``/admin/reload``
    does. Raises :class:`AuthError` (401) or :class:`PermissionDeniedError` (403)."""
    if is_admin(request, gw.config.budgets.admin_keys):
        return
    if not request.headers.get("authorization") and not gw.keys.open:
        raise AuthError("admin key required: send it as 'Authorization: Bearer <key>'")
    if not authenticate(gw, request).admin:
        raise PermissionDeniedError("admin key required: this key is not an admin key")


def window_of(request: Request) -> tuple[float, float]:
    """(since, bucket width) of the ``window`` parameter (seconds; one of WINDOWS_S)."""
    try:
        window = int(request.query_params.get("window", "3600"))
    except ValueError:
        window = 3600
    window = min(WINDOWS_S, key=lambda w: abs(w - window))
    step = float(max(1, math.ceil(window / BUCKETS)))
    now = time.time()
    return (math.floor((now - window) / step) * step, step)


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An admin-only JSON endpoint over ``handler(request, gateway, reader)``."""
    async def endpoint(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        try:
            check_admin(gw, request)
            body = await handler(request, gw, LogReader(gw.config.gateway.request_log))
        except PointsmanError as exc:
            return _error(http_status(exc), exc.message, exc.code)
        if body is None:
            return _error(404, "not found", "not_found")
        return _secured(JSONResponse(tidy_floats(body)))
    return endpoint


async def overview(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    since, step = window_of(request)
    series = await reader.totals(since, step)
    keys = ("requests", "failed", "cost_usd", "baseline_cost_usd", "prompt_tokens",
            "completion_tokens")
    totals = {k: sum(b[k] for b in series) for k in keys}
    totals["savings_usd"] = totals["baseline_cost_usd"] - totals["cost_usd"]
    return {"since": since, "step": step, "totals": totals, "series": series,
            "now": time.time(), "logging": gw.config.gateway.request_log.enabled}


async def routing(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    since, step = window_of(request)
    rows = await reader.routing(since, step)
    tiers = {m.name: m.tier for m in gw.catalog}
    by: dict[str, dict[str, dict[float, int]]] = {"model": {}, "tier": {}, "reason": {}}
    for t, model, kind, n in rows:
        for group, name in (("model", model), ("tier", tiers.get(model, "(none)")),
                            ("reason", kind)):
            cell = by[group].setdefault(name, {})
            cell[t] = cell.get(t, 0) + n
    return {"since": since, "step": step, "buckets": sorted({r[0] for r in rows}),
            "by": {g: {name: sorted(v.items()) for name, v in groups.items()}
                   for g, groups in by.items()}}


async def latency(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    since, step = window_of(request)
    rows = await reader.model_latency(since, step)
    return {**await live.latency(gw), "since": since, "step": step,
            "mean_ms": [{"t": t, "model": m, "ms": ms} for t, m, ms in rows]}


async def budgets(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    return await live.budgets(gw, reader)


async def experiments(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    since, _ = window_of(request)
    return {"experiments": await live.experiments(gw), "labels": await reader.labels(since)}


async def requests_page(request: Request, gw: Gateway, reader: LogReader) -> dict[str, Any]:
    since, _ = window_of(request)
    params = request.query_params
    try:
        before = float(params["before"]) if params.get("before") else None
        limit = int(params.get("limit", "50"))
    except ValueError:
        before, limit = None, 50
    filters = {name: params[name] for name in FILTERS if params.get(name)}
    rows = await reader.page(filters, since, before, limit)
    return {"requests": rows, "choices": await reader.choices(since), "filters": filters,
            "log_messages": gw.config.gateway.request_log.log_messages}


async def one_request(request: Request, gw: Gateway,
                      reader: LogReader) -> dict[str, Any] | None:
    record = await reader.record(request.path_params["request_id"])
    if record is None:
        return None
    tiers = {m.name: m.tier for m in gw.catalog}
    record["tiers"] = {m: tiers[m] for m in record.get("models_tried", []) if m in tiers}
    return record


def ui_routes() -> list[Route]:
    """The dashboard's routes (mounted by the app when ``gateway.ui.enabled``)."""
    get = ["GET"]
    return [Route("/ui", page, methods=get),
            Route("/ui/static/{name}", asset, methods=get),
            Route("/ui/api/overview", api(overview), methods=get),
            Route("/ui/api/routing", api(routing), methods=get),
            Route("/ui/api/latency", api(latency), methods=get),
            Route("/ui/api/budgets", api(budgets), methods=get),
            Route("/ui/api/experiments", api(experiments), methods=get),
            Route("/ui/api/requests", api(requests_page), methods=get),
            Route("/ui/api/requests/{request_id}", api(one_request), methods=get)]
