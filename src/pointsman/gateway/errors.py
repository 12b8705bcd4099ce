"""Every error the gateway returns goes through here: the status from
:func:`pointsman.errors.http_status`, the body in the caller's door's shape (OpenAI's
``{"error": {"message", "type", "param", "code"}}`` on Chat Completions and Responses,
Anthropic's ``{"type": "error", "error": {"type", "message"}}`` on Messages)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from pointsman import jsonio
from pointsman.errors import (
    AllAttemptsFailedError,
    AuthError,
    BudgetExceededError,
    InputError,
    PermissionDeniedError,
    PointsmanError,
    RateLimitedError,
    http_status,
)

if TYPE_CHECKING:
    from pointsman.doors.base import Door


def error_type(error: PointsmanError, status: int) -> str:
    if isinstance(error, AuthError):
        return "authentication_error"
    if isinstance(error, PermissionDeniedError):
        return "permission_error"
    if isinstance(error, BudgetExceededError | RateLimitedError) or status == 429:
        return "rate_limit_error"
    if status < 500:
        return "invalid_request_error"
    return "api_error"


def error_payload(error: PointsmanError) -> tuple[int, dict[str, Any]]:
    status = http_status(error)
    detail: dict[str, Any] = {
        "message": error.message,
        "type": error_type(error, status),
        "param": error.param if isinstance(error, InputError) else None,
        "code": error.code,
    }
    if isinstance(error, AllAttemptsFailedError):
        detail["attempts"] = [{"model": a.model, "error": a.error, "code": a.code}
                              for a in error.attempts]
    if isinstance(error, BudgetExceededError):
        detail["budget"] = error.budget
        detail["resets_at"] = error.resets_at
    return status, {"error": detail}


def error_response(error: PointsmanError, headers: dict[str, str] | None = None) -> Response:
    status, payload = error_payload(error)
    return Response(jsonio.dumps(payload), status, headers=headers,
                    media_type="application/json")


def door_error(door: Door, error: PointsmanError,
               headers: Mapping[str, str] | None = None) -> Response:
    """``error`` in the caller's format (each door's error shape), with its one status."""
    status = http_status(error)
    extra = dict(headers or {})
    if isinstance(error, BudgetExceededError):  # a cap resets later: retrying now is futile
        extra["x-should-retry"] = "false"
        wait = retry_after_s(error.resets_at)
        if wait is not None:
            extra["retry-after"] = str(wait)
    return Response(jsonio.dumps(door.error_body(error, status)), status, headers=extra,
                    media_type="application/json")


def retry_after_s(resets_at: str | None, now: float | None = None) -> int | None:
    """Whole seconds until an ISO 8601 reset time (at least 1), for ``Retry-After``;
    None when there is no reset time or it cannot be read."""
    if not resets_at:
        return None
    try:
        reset = datetime.fromisoformat(resets_at)
    except ValueError:
        return None
    if reset.tzinfo is None:
        return None
    return max(1, math.ceil(reset.timestamp() - (time.time() if now is None else now)))
