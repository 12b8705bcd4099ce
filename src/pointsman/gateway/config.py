"""The ``gateway`` config section: listen address, limits, API keys, request log, retries,
deployment health and stored responses (strict models: unknown keys are refused)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pointsman.redis_config import check_prefix, check_url

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyConfig(_Strict):
    """A virtual API key: the secret (inline or from an environment variable) and its owner."""

    key: str | None = Field(default=None, min_length=8)
    key_env: str | None = None
    name: str = Field(min_length=1)
    user: str | None = None
    team: str | None = None
    plan: str | None = None
    models: list[str] | None = None
    admin: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> KeyConfig:
        if (self.key is None) == (self.key_env is None):
            raise ValueError("give exactly one of key, key_env")
        return self

    def secret(self) -> str | None:
        """The key's value; None when its environment variable is unset or empty."""
        if self.key is not None:
            return self.key
        assert self.key_env is not None
        return os.environ.get(self.key_env) or None


class RequestLogConfig(_Strict):
    enabled: bool = True
    sqlite_path: str = "pointsman-requests.db"
    postgres_dsn: str | None = None
    postgres_schema: str = "pointsman"
    log_messages: bool = False


class RetryConfig(_Strict):
    """Retries of the same deployment: bounded exponential backoff with full jitter."""

    max_retries: int = Field(default=1, ge=0, le=10)
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_cap_s: float = Field(default=5.0, ge=0)


class HealthConfig(_Strict):
    """When a deployment goes into cooldown, and for how long."""

    window_s: float = Field(default=60.0, gt=0)
    error_rate: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=10, ge=1)
    consecutive_failures: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    store: Literal["memory", "redis"] = "memory"  # redis: one breaker shared by replicas
    # Overrides of the top-level ``redis`` section for this store (None: use it; the
    # prefix then is ``redis.prefix`` + "health:"); see pointsman.redis_config.
    redis_url: str | None = None
    redis_prefix: str | None = None
    socket_timeout_s: float | None = Field(default=None, gt=0, le=60)
    cache_s: float = Field(default=0.25, ge=0)  # how stale another replica's trip may be

    _url = field_validator("redis_url")(check_url)
    _prefix = field_validator("redis_prefix")(check_prefix)


class ResponsesConfig(_Strict):
    """The Responses API door's stored responses (kept in the request log's database).

    ``store``: whether a request that omits its ``store`` field is stored (OpenAI's API
    stores by default; a gateway in front of many clients may not want to keep every
    conversation, so it is off unless configured). A stored response can be continued
    with ``previous_response_id`` and read back with ``GET /v1/responses/{id}`` by the same
    key. ``ttl_s``: how long a stored response is kept, in seconds (default 30 days).
    """

    store: bool = Field(default=False,
                        description="Whether a Responses request that omits `store` is stored.")
    ttl_s: float = Field(default=30 * 24 * 3600.0, gt=0,
                         description="Seconds a stored response is kept.")


class UiConfig(_Strict):
    """The web dashboard at ``/ui`` (pointsman.ui): admin keys only, read-only."""

    enabled: bool = Field(default=True,
                          description="Serve the web dashboard at /ui (admin keys only; off: "
                                      "its routes are not mounted).")


class GatewayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # slow or hostile clients (see pointsman.gateway.server.guarded_http): the whole body
    # must arrive within body_timeout_s (408), the request head within header_timeout_s
    # and max_header_bytes (408 / 431); an idle keep-alive connection is closed after
    # keepalive_timeout_s; beyond max_connections open connections (or requests in
    # flight) new requests are answered 503 at once.
    body_timeout_s: float = Field(default=30.0, gt=0,
                                  description="Seconds a request body may take to arrive (else "
                                              "408).")
    header_timeout_s: float = Field(default=15.0, gt=0,
                                    description="Seconds a request head may take to arrive (else "
                                                "408).")
    max_header_bytes: int = Field(default=64 * 1024, ge=1024,
                                  description="Largest request head accepted (else 431).")
    keepalive_timeout_s: float = Field(default=5.0, gt=0,
                                       description="Seconds an idle keep-alive connection is kept.")
    max_connections: int = Field(default=8192, ge=1,
                                 description="Open connections served at once (more are answered "
                                             "503).")
    keys: list[KeyConfig] = Field(default_factory=list)
    keys_db: str | None = None  # SQLite file of keys managed with ``pointsman keys``
    keys_db_reload_s: float = Field(default=10.0, gt=0)
    request_log: RequestLogConfig = RequestLogConfig()
    retry: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()
    responses: ResponsesConfig = ResponsesConfig()
    ui: UiConfig = UiConfig()
    drain_timeout_s: float = Field(default=30.0, gt=0)
    # worker processes of ``pointsman serve`` (None: the number of cores; see
    # pointsman.gateway.workers for what they share)
    workers: int | None = Field(default=None, ge=1, le=256,
                                description="Worker processes on the port (null: one per core).")

    @model_validator(mode="after")
    def _unique_names(self) -> GatewayConfig:
        names = [k.name for k in self.keys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"keys: duplicate key names {dupes}")
        return self
