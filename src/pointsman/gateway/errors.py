"""Every error the gateway returns goes through here: one OpenAI-style JSON shape
``{"error": {"message", "type", "param", "code"}}``, the status from
:func:`pointsman.errors.http_status`."""

from __future__ import annotations

from typing import Any

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


def stream_error_event(error: PointsmanError) -> bytes:
    """The SSE event that ends a stream that broke after tokens were sent."""
    _, payload = error_payload(error)
    return b"data: " + jsonio.dumps(payload) + b"\n\ndata: [DONE]\n\n"
