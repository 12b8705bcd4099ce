"""``GET /v1/spend``: the ``pointsman spend --json`` report over HTTP, for admin keys only.

Query parameters: at most one of ``key``, ``user``, ``team``; ``window`` = day | month.
Mount :func:`spend_route` in the gateway's routes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pointsman.budget.config import BudgetsConfig
from pointsman.budget.ledger import SpendLedger
from pointsman.budget.spend import LabelQueries, Scope, SpendQueries, spend_report
from pointsman.jsonio import tidy_floats


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "param": None, "code": code}}, status_code=status)


def is_admin(request: Request, admin_keys: Sequence[str]) -> bool:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    found = False
    for key in admin_keys:  # compare with every key, in constant time
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found and bool(token)


def spend_route(cfg: BudgetsConfig, queries: SpendQueries, ledger: SpendLedger | None,
                admin_keys: Sequence[str] | None = None,
                admin_caller: Callable[[Request], bool] | None = None,
                labels: Callable[[Request], LabelQueries | None] | None = None) -> Route:
    """``admin_caller``: whether a request's key is an admin key besides ``admin_keys``
    (the gateway's key ring: config keys and keys-database keys made with ``--admin``);
    ``labels``: the label store, for quality and judging spend beside the savings."""
    keys = list(admin_keys if admin_keys is not None else cfg.admin_keys)

    async def endpoint(request: Request) -> JSONResponse:
        headers = request.headers
        if not headers.get("authorization") and not headers.get("x-api-key"):
            return _error(401, "missing API key (Authorization: Bearer ...)", "invalid_api_key")
        if not is_admin(request, keys) and not (admin_caller and admin_caller(request)):
            return _error(403, "GET /v1/spend needs an admin key", "permission_denied")
        params = request.query_params
        given = [s for s in ("key", "user", "team") if params.get(s)]
        window = params.get("window", "day")
        if len(given) > 1 or window not in ("day", "month"):
            return _error(400, "give at most one of key, user, team; window is day or month",
                          "invalid_request_error")
        scope: Scope | None = given[0] if given else None  # type: ignore[assignment]
        report = await spend_report(cfg, queries, ledger, scope,
                                    params.get(scope) if scope else None,
                                    "day" if window == "day" else "month",
                                    labels=labels(request) if labels is not None else None)
        return JSONResponse(tidy_floats(report))  # the CLI's figures, to the digit

    return Route("/v1/spend", endpoint, methods=["GET"])
