"""The app factory and its lifespan.

``create_app(config)`` builds everything once (router, provider deployments, executor,
health, budget guard, keys, metrics); the lifespan opens the request log at start-up and,
at shutdown (after uvicorn has drained in-flight requests on SIGTERM), flushes it and
closes the provider clients and the spend ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pointsman.budget.factory import budgets_configured, build_guard, build_ledger
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.http import spend_route
from pointsman.config import PointsmanConfig
from pointsman.doors.base import Door
from pointsman.doors.chat import ChatDoor
from pointsman.doors.messages import MessagesDoor
from pointsman.errors import MethodNotAllowedError, PointsmanError, RouteNotFoundError
from pointsman.executor import DeploymentSource
from pointsman.experiments.service import experiment_endpoint
from pointsman.gateway.endpoints import (
    Endpoint,
    authenticate,
    count_tokens_endpoint,
    door_endpoint,
)
from pointsman.gateway.errors import door_error
from pointsman.gateway.feedback import feedback_endpoint
from pointsman.gateway.models import get_model, health, list_models
from pointsman.gateway.openapi import openapi_endpoint
from pointsman.gateway.reload import Reloader, reload_endpoint
from pointsman.gateway.responses_http import create_response, delete_response, get_response
from pointsman.gateway.runtime import Gateway
from pointsman.requestlog import RequestLog
from pointsman.state import OutcomeRecorder
from pointsman.stores.labels import LabelStore
from pointsman.stores.responses import ResponseStore

if TYPE_CHECKING:
    from pointsman.telemetry.tracing import Telemetry

log = logging.getLogger("pointsman.gateway")


def default_deployments(config: PointsmanConfig, gateway_catalog: Any) -> DeploymentSource:
    """The provider deployments from the config (endpoints, keys from the environment);
    the app's lifespan closes them, so they may use the aiohttp transport."""
    from pointsman.providers.config import build_providers

    source: DeploymentSource = build_providers(config, gateway_catalog, closed=True)
    return source


CHAT = ChatDoor()
MESSAGES = MessagesDoor()
PURGE_EVERY_S = 3600.0
GUARD_IDLE_S = 30.0  # no guardrail configured: look again after a reload
JUDGING_GRACE_S = 5.0  # at shutdown, judged samples in flight get this long to finish


def door_of(path: str) -> Door:
    """The door whose error shape a path's errors take (Chat Completions' by default)."""
    return MESSAGES if path.startswith("/v1/messages") else CHAT


async def _not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path
    return door_error(door_of(path), RouteNotFoundError(f"no route {request.method} {path}"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    path = request.url.path
    return door_error(door_of(path), MethodNotAllowedError(
        f"method {request.method} is not allowed on {path}"))


async def _pointsman_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PointsmanError)
    return door_error(door_of(request.url.path), exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: logged with its traceback, answered as OpenAI-style JSON."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error": {"message": f"internal error ({type(exc).__name__}); see the gateway log",
                      "type": "api_error", "param": None, "code": "internal_error"}}
    return JSONResponse(body, status_code=500)


def _keyring_admin(gw: Gateway, request: Request) -> bool:
    """Whether the request's key is one of the key ring's admin keys (a keys-database key
    made with ``pointsman keys add --admin`` included); an open gateway has none."""
    if gw.keys.open:
        return False
    try:
        return authenticate(gw, request).admin
    except PointsmanError:
        return False


async def _close(what: object) -> None:
    aclose: Callable[[], Awaitable[None]] | None = getattr(what, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except PointsmanError as exc:
        log.error("shutdown: %s", exc.message)


def create_app(config: PointsmanConfig, deployments: DeploymentSource | None = None, *,
               request_log: RequestLog | None = None,
               guard: LedgerBudgetGuard | None = None,
               recorders: Sequence[OutcomeRecorder] = (),
               responses: ResponseStore | None = None,
               labels: LabelStore | None = None,
               telemetry: Telemetry | None = None) -> Starlette:
    """The gateway app; ``recorders`` are told every upstream attempt's outcome, besides
    the health, latency and metrics recorders the gateway has (a non-streaming answer is
    sent before they are told). A caller that passes its own ``request_log`` passes the
    Responses door's ``responses`` store and the ``labels`` store too (or has none); else
    all three are opened from the config. ``telemetry``: the spans' tracer (default: from
    ``telemetry``, when enabled); ``app.state.reloader`` reloads the config (see
    gateway/reload.py)."""
    from pointsman.router import resolve_catalog
    from pointsman.telemetry import open_telemetry

    owned: list[object] = []
    if deployments is None:
        deployments = default_deployments(config, resolve_catalog(config))
        owned.append(deployments)
    ledger = None
    if guard is None and budgets_configured(config.budgets):
        ledger = build_ledger(config.budgets, Path.cwd(), config.redis)
        guard = build_guard(config.budgets, resolve_catalog(config), ledger)
        owned.append(guard)
    telemetry = telemetry if telemetry is not None else open_telemetry(config.telemetry)
    gw = Gateway(config, deployments, guard=guard, recorders=recorders, telemetry=telemetry)
    from pointsman.judging.wiring import build_judging

    gw.judging = build_judging(gw)
    owned.append(gw.latency)
    owned.append(gw.health)
    if gw.shares is not None:
        owned.append(gw.shares)
    if gw.affinity is not None:
        owned.append(gw.affinity)
    admin = [*config.budgets.admin_keys, *gw.keys.admin_secrets]
    routes = [*door_routes(),
              Route("/v1/models", list_models, methods=["GET"]),
              Route("/v1/models/{model:path}", get_model, methods=["GET"]),
              Route("/health", health, methods=["GET"]),
              Route("/metrics", gw.metrics.endpoint, methods=["GET"]),
              spend_route(config.budgets, gw, guard.ledger if guard else ledger, admin,
                          admin_caller=lambda request: _keyring_admin(
                              request.app.state.gateway, request),
                          labels=lambda request: request.app.state.gateway.labels),
              Route("/openapi.json", openapi_endpoint, methods=["GET"]),
              Route("/v1/feedback", feedback_endpoint, methods=["POST"]),
              Route("/v1/experiments/{name}", experiment_endpoint, methods=["GET"]),
              Route("/admin/reload", reload_endpoint, methods=["POST"])]
    if config.gateway.ui.enabled:
        from pointsman.ui import ui_routes

        routes.extend(ui_routes())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gw.drain.loop = reloader.loop = asyncio.get_running_loop()
        gw.log = request_log if request_log is not None else await _open_log(config)
        gw.responses = responses if request_log is not None else await _open_responses(config)
        gw.labels = await _open_labels(config) if request_log is None else labels
        purging = asyncio.get_running_loop().create_task(_purge(gw))
        guarding = asyncio.get_running_loop().create_task(_guard(app))
        if gw.judging is not None:
            await gw.judging.start(gw.labels)
        try:
            yield
        finally:
            purging.cancel()
            guarding.cancel()
            if gw.judging is not None:  # before the label store closes
                await gw.judging.aclose(min(JUDGING_GRACE_S, config.gateway.drain_timeout_s))
            await reloader.aclose()
            for own in (gw.log, gw.responses, gw.labels) if request_log is None else ():
                if own is not None:
                    await _close(own)
            for item in owned:
                await _close(item)
            if telemetry is not None:
                await telemetry.aclose()  # last: the spans of the drained requests

    app = GatewayApp(routes=routes, lifespan=lifespan, exception_handlers={
        404: _not_found, 405: _method_not_allowed, PointsmanError: _pointsman_error,
        Exception: _internal_error})
    app.state.gateway = gw
    reloader = Reloader(app, owned, recorders=recorders,
                        deployments_owned=deployments in owned)
    app.state.reloader = reloader
    return app


class IndexedHeaders(Headers):
    """Starlette's request headers, looked up in a dict built once: Starlette scans the
    list on every lookup and raises ``KeyError`` for a missing header (~1.5 µs), and a
    door request asks for a dozen, most of them absent. The first value of a repeated
    header wins, as in Starlette's lookups; everything else is Starlette's."""

    def __init__(self, *, scope: Scope) -> None:
        super().__init__(scope=scope)
        index: dict[bytes, bytes] = {}
        for name, value in self._list:
            index.setdefault(name, value)
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:
        value = self._index.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        value = self._index.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._index


class GatewayApp(Starlette):
    """Starlette, with the doors' ``POST`` routes taken straight to their endpoints: the
    routing table, the two exception middlewares and the route wrapper cost ~20 µs a
    request (~5% of a proxied call) and add nothing to endpoints that answer every error
    in their door's shape themselves. Every other request (and any door request behind a
    ``root_path``) goes through Starlette as before; an exception that escapes an endpoint
    is answered by the same handlers Starlette would use."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (DOOR_POSTS.get(scope["path"]) if scope["type"] == "http"
                    and scope["method"] == "POST" and not scope.get("root_path") else None)
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive, send)
        request._headers = IndexedHeaders(scope=scope)
        try:
            response = await endpoint(request)
        except PointsmanError as exc:
            response = await _pointsman_error(request, exc)
        except Exception as exc:
            response = await _internal_error(request, exc)
        await response(scope, receive, send)


def door_routes() -> list[Route]:
    """The three doors' routes (Chat Completions also without its ``/v1`` prefix)."""
    chat, messages = door_endpoint(CHAT), door_endpoint(MESSAGES)
    return [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens_endpoint, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    ]


DOOR_POSTS: dict[str, Endpoint] = {
    route.path: route.endpoint for route in door_routes()
    if route.methods == {"POST"} and "{" not in route.path}


async def _purge(gw: Gateway) -> None:
    """Drop expired stored responses now and then (reads already ignore them)."""
    while True:
        if gw.responses is not None:
            try:
                await gw.responses.purge(time.time())
            except PointsmanError as exc:
                log.warning("stored responses: purge failed: %s", exc.message)
        await asyncio.sleep(PURGE_EVERY_S)


async def _guard(app: Starlette) -> None:
    """The experiments' guardrail checks, on the gateway in force (a reload may change
    the experiments)."""
    while True:
        gw: Gateway = app.state.gateway
        every = gw.experiments.guard_every() if gw.experiments is not None else None
        await asyncio.sleep(every or GUARD_IDLE_S)
        gw = app.state.gateway
        if every is not None and gw.experiments is not None:
            await gw.experiments.check(gw)


async def _open_responses(config: PointsmanConfig) -> ResponseStore | None:
    cfg = config.gateway.request_log
    if not cfg.enabled:
        return None
    from pointsman.stores.requestlog_open import open_response_store

    return await open_response_store(cfg.sqlite_path, cfg.postgres_dsn, cfg.postgres_schema)


async def _open_labels(config: PointsmanConfig) -> LabelStore | None:
    cfg = config.gateway.request_log
    if not cfg.enabled:
        return None
    from pointsman.stores.labels import open_label_store

    return await open_label_store(cfg.sqlite_path, cfg.postgres_dsn, cfg.postgres_schema)


async def _open_log(config: PointsmanConfig) -> RequestLog | None:
    cfg = config.gateway.request_log
    if not cfg.enabled:
        return None
    from pointsman.stores.requestlog_open import open_request_log

    return await open_request_log(cfg.sqlite_path, cfg.postgres_dsn, cfg.postgres_schema)
