"""The one exception hierarchy of pointsman.

    PointsmanError                 base; every error pointsman raises on purpose
    ├── ConfigError                a config file or value is invalid (names file and field)
    ├── InputError                 a request or CLI input is invalid (HTTP 400)
    │   ├── UnknownModelError      a model name that is not in the catalog (HTTP 404)
    │   ├── RouteNotFoundError     no such route, or no such stored object (HTTP 404)
    │   ├── MethodNotAllowedError  a route that exists, with another method (HTTP 405)
    │   ├── PayloadTooLargeError   a request body over the configured size (HTTP 413)
    │   ├── RequestTimeoutError    a request body not received in time (HTTP 408)
    │   └── UnsupportedMediaTypeError a body that is not application/json (HTTP 415)
    ├── AuthError                  missing or wrong API key (HTTP 401)
    ├── PermissionDeniedError      a key may not use that model or endpoint (HTTP 403)
    ├── NoCandidateError           no model can serve the request (HTTP 400)
    │   ├── NoDeploymentError      no candidate has a deployment to call (HTTP 503)
    │   └── NoHealthyCandidateError every candidate that fits is cooling down (HTTP 503)
    ├── BudgetExceededError        a budget cap is reached (HTTP 429 or 402)
    ├── ArtifactError              a trained router artifact is missing or corrupt
    ├── DataError                  an evaluation data set cannot be read
    ├── StoreUnavailableError      a shared store (Redis, PostgreSQL) cannot be reached (HTTP 503)
    ├── ShuttingDownError          the gateway interrupted the request to shut down (HTTP 503)
    └── ProviderError              an upstream model call failed
        ├── RateLimitedError       429 from upstream (carries Retry-After)
        ├── UpstreamServerError    5xx from upstream
        ├── UpstreamTimeoutError   connect / first-token / total timeout
        ├── UpstreamConnectionError the upstream could not be reached
        ├── StreamBrokenError      a stream ended early
        ├── UpstreamRejectedError  a non-retryable 4xx from upstream
        └── AllAttemptsFailedError every model in the chain failed; keeps each attempt's error

HTTP statuses are decided in one place: :func:`http_status`.
"""

from __future__ import annotations

from dataclasses import dataclass


class PointsmanError(Exception):
    """Base class of every error raised on purpose by pointsman."""

    code: str = "pointsman_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PointsmanError):
    code = "invalid_config"


class InputError(PointsmanError):
    code = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownModelError(InputError):
    code = "model_not_found"


class RouteNotFoundError(InputError):
    code = "not_found"


class MethodNotAllowedError(InputError):
    code = "method_not_allowed"


class PayloadTooLargeError(InputError):
    code = "request_too_large"


class RequestTimeoutError(InputError):
    code = "request_timeout"


class UnsupportedMediaTypeError(InputError):
    code = "unsupported_media_type"


class AuthError(PointsmanError):
    code = "invalid_api_key"


class PermissionDeniedError(PointsmanError):
    code = "permission_denied"


class NoCandidateError(PointsmanError):
    code = "no_candidate_model"


class NoDeploymentError(NoCandidateError):
    """Every candidate was left out for having no deployment: the gateway's setup, not the
    request, is at fault."""

    code = "no_deployment"


class NoHealthyCandidateError(NoCandidateError):
    """Every candidate that could serve the request is cooling down after failures (or
    has no deployment): the upstreams, not the request, are at fault."""

    code = "no_healthy_candidate"


class BudgetExceededError(PointsmanError):
    code = "budget_exceeded"

    def __init__(
        self, message: str, budget: str, resets_at: str | None = None, status: int = 429
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.resets_at = resets_at
        self.status = status


class ArtifactError(PointsmanError):
    code = "invalid_artifact"


class DataError(PointsmanError):
    code = "invalid_data"


class StoreUnavailableError(PointsmanError):
    code = "store_unavailable"


class ShuttingDownError(PointsmanError):
    code = "shutting_down"


class ProviderError(PointsmanError):
    code = "upstream_error"
    retryable: bool = True

    def __init__(self, message: str, model: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.status = status


class RateLimitedError(ProviderError):
    code = "upstream_rate_limited"

    def __init__(
        self, message: str, model: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, model, 429)
        self.retry_after = retry_after


class UpstreamServerError(ProviderError):
    code = "upstream_server_error"


class UpstreamTimeoutError(ProviderError):
    code = "upstream_timeout"


class UpstreamConnectionError(ProviderError):
    code = "upstream_unreachable"


class StreamBrokenError(ProviderError):
    code = "upstream_stream_broken"


class UpstreamRejectedError(ProviderError):
    code = "upstream_rejected"
    retryable = False


class UpstreamMisconfiguredError(ProviderError):
    """The upstream refused pointsman itself (401, 403: its key; 404: its URL or model
    name): a 502 naming the upstream, never the upstream's 401 (the client's own key is
    fine), and the executor moves on to the next deployment or model."""

    code = "upstream_misconfigured"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one model, kept for the error report and the request log."""

    model: str
    error: str
    code: str


class AllAttemptsFailedError(ProviderError):
    code = "all_models_failed"

    def __init__(self, attempts: list[Attempt]) -> None:
        listed = "; ".join(f"{a.model}: {a.error}" for a in attempts)
        super().__init__(f"every model failed ({len(attempts)} attempts): {listed}")
        self.attempts = attempts


def http_status(error: PointsmanError) -> int:
    """The HTTP status for an error: the one place where this is decided."""
    if isinstance(error, BudgetExceededError):
        return error.status
    if isinstance(error, UpstreamRejectedError):
        return error.status if error.status and 400 <= error.status < 500 else 502
    table: list[tuple[type[PointsmanError], int]] = [
        (UnknownModelError, 404),
        (RouteNotFoundError, 404),
        (MethodNotAllowedError, 405),
        (PayloadTooLargeError, 413),
        (RequestTimeoutError, 408),
        (UnsupportedMediaTypeError, 415),
        (InputError, 400),
        (NoDeploymentError, 503),
        (NoHealthyCandidateError, 503),
        (NoCandidateError, 400),
        (AuthError, 401),
        (PermissionDeniedError, 403),
        (StoreUnavailableError, 503),
        (ShuttingDownError, 503),
        (RateLimitedError, 429),
        (UpstreamTimeoutError, 504),
        (ProviderError, 502),
        (ConfigError, 500),
        (ArtifactError, 500),
        (DataError, 500),
    ]
    for kind, status in table:
        if isinstance(error, kind):
            return status
    return 500
