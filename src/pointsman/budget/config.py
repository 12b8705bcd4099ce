"""The ``budgets`` config section: strict models (unknown keys are refused)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pointsman.redis_config import check_prefix, check_url
from pointsman.types import TIERS

Scope = Literal["key", "user", "team", "session", "global"]
WindowKind = Literal["day", "month", "rolling"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetLimit(_Strict):
    """One budget: a cap on spend (and optionally requests) of one scope over one window.

    ``subject`` names one key/user/team/session; ``"*"`` (the default) gives every
    subject of the scope its own budget of this size.
    """

    scope: Scope
    subject: str = "*"
    window: WindowKind = "day"
    seconds: int | None = Field(default=None, gt=0)
    limit_usd: float | None = Field(default=None, ge=0)
    limit_requests: int | None = Field(default=None, ge=0)
    requests_tiers: list[str] = Field(default_factory=lambda: list(TIERS))

    @model_validator(mode="after")
    def _check(self) -> BudgetLimit:
        if self.window == "rolling" and self.seconds is None:
            raise ValueError("a rolling window needs seconds")
        if self.window != "rolling" and self.seconds is not None:
            raise ValueError("seconds applies only to window: rolling")
        if self.limit_usd is None and self.limit_requests is None:
            raise ValueError("give limit_usd, limit_requests or both")
        _check_tiers(self.requests_tiers)
        return self


class DowngradeStep(_Strict):
    """From ``at`` (a fraction of the budget used) on, route to tiers up to ``max_tier``."""

    at: float = Field(gt=0, le=1)
    max_tier: str

    @field_validator("max_tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        _check_tiers([value])
        return value


class PlanConfig(_Strict):
    """A named plan: what its members may use, their budgets and downgrade steps."""

    tiers: list[str] = Field(default_factory=lambda: list(TIERS))
    models: list[str] | None = None
    budgets: list[BudgetLimit] = Field(default_factory=list)
    downgrade: list[DowngradeStep] | None = None

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: list[str]) -> list[str]:
        return _check_tiers(value)


class AlertsConfig(_Strict):
    webhook_url: str | None = None
    thresholds: list[float] = Field(default_factory=lambda: [0.8, 0.95, 1.0])
    timeout_s: float = Field(default=2.0, gt=0)


class BudgetsConfig(_Strict):
    """Budgets, plans, the spend ledger store and alerts.

    Reservations are leases: a request's hold lives ``lease_s`` seconds in the ledger and
    is renewed (every ``lease_s / 3``, one batched call per process) while the request
    runs, for at most ``hold_ttl_s``. When a replica is killed (SIGKILL, OOM) its holds
    lapse within ``lease_s`` and the budget they held is free again for every replica.
    What a killed replica's in-flight requests had already spent upstream cannot be
    measured (the answer, with its usage, died with the process): their leases are
    released, not charged, so the ledger and the request log still agree with each
    other, both without those requests' cost.

    Redis: ``socket_timeout_s`` (2 s) is sized for a busy host, ``connect_timeout_s``
    bounds connecting, ``redis_max_connections`` the pool (sized for the concurrency of
    one replica); after a timeout the ledger fails at once for ``circuit_open_s``
    (``on_store_error`` decides: refuse with 503 or serve) rather than every request
    waiting the full timeout.
    """

    enabled: bool = True
    store: Literal["memory", "sqlite", "redis"] = "sqlite"
    sqlite_path: str = "pointsman-spend.db"
    # Overrides of the top-level ``redis`` section for the ledger (None: use it; the
    # prefix then is ``redis.prefix`` + "spend:"); see pointsman.redis_config.
    redis_url: str | None = None
    redis_prefix: str | None = None
    socket_timeout_s: float | None = Field(default=None, gt=0, le=60)
    connect_timeout_s: float = Field(default=2.0, gt=0, le=10,
                                     description="Seconds to connect to the ledger's Redis.")
    redis_max_connections: int = Field(default=128, ge=1,
                                       description="Pooled connections to the ledger's Redis (one "
                                                   "replica's concurrency).")
    circuit_open_s: float = Field(default=1.0, ge=0,
                                  description="After a Redis timeout, seconds the ledger fails at "
                                              "once before probing again.")
    on_store_error: Literal["fail_open", "fail_closed"] = "fail_closed"
    timezone: str = "UTC"
    exceeded_status: Literal[429, 402] = 429
    cost_margin: float = Field(default=1.2, ge=1)
    lease_s: float = Field(default=15.0, gt=0,
                           description="Seconds a reservation lives unless renewed: a dead "
                                       "replica's holds lapse within it.")
    hold_ttl_s: int = Field(default=600, gt=0)  # the longest a hold is renewed
    downgrade: list[DowngradeStep] = Field(default_factory=lambda: [
        DowngradeStep(at=0.8, max_tier="mid"), DowngradeStep(at=0.95, max_tier="cheap")])
    limits: list[BudgetLimit] = Field(default_factory=list)
    plans: dict[str, PlanConfig] = Field(default_factory=dict)
    default_plan: str | None = None
    members: dict[str, str] = Field(default_factory=dict)
    admin_keys: list[str] = Field(default_factory=list)
    alerts: AlertsConfig = AlertsConfig()

    _url = field_validator("redis_url")(check_url)
    _prefix = field_validator("redis_prefix")(check_prefix)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _plans(self) -> BudgetsConfig:
        named = set(self.plans)
        wanted = set(self.members.values()) | ({self.default_plan} if self.default_plan else set())
        unknown = sorted(wanted - named)
        if unknown:
            raise ValueError(f"unknown plans {unknown}; defined: {sorted(named)}")
        return self


def _check_tiers(tiers: list[str]) -> list[str]:
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise ValueError(f"unknown tiers {unknown}; expected some of {list(TIERS)}")
    return tiers
