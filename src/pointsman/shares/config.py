"""The ``router.targets`` config section. Example::

    router:
      targets:
        shares: {premium: 0.05, mid: 0.20}   # the most each tier may take of auto traffic
        window: 2000                         # recent complexity scores the quantiles use
        min_samples: 100                     # fewer: the configured routing stands
        store: redis                         # memory (one process) or redis (replicas)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pointsman.redis_config import check_prefix, check_url
from pointsman.types import TIERS


class TargetsConfig(BaseModel):
    """Maximum shares per tier. A tier's threshold is the score quantile that leaves that
    tier and every capped tier above it their summed shares: with premium 0.05 and mid
    0.20, premium needs a score in the top 5%, mid one in the top 25%."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: dict[str, float] = Field(
        min_length=1, description="Tier → the most of auto traffic it may take (0 to 1).")
    window: int = Field(default=2000, ge=10, le=100_000,
                        description="How many recent complexity scores the quantiles use.")
    min_samples: int = Field(default=100, ge=1, description=(
        "Scores needed before the targets apply (fewer: the configured routing stands)."))
    store: Literal["memory", "redis"] = Field(default="memory", description=(
        "Where the score window lives: this process, or Redis shared by replicas."))
    redis_url: str | None = Field(default=None, description=(
        "Overrides `redis.url` for the window (None: the top-level section)."))
    redis_prefix: str | None = Field(default=None, description=(
        "Overrides the key prefix (None: `redis.prefix` + 'shares:')."))
    refresh_s: float = Field(default=0.5, ge=0, description=(
        "Redis: seconds between syncs of this replica's scores and the shared window."))

    _url = field_validator("redis_url")(check_url)
    _prefix = field_validator("redis_prefix")(check_prefix)

    @field_validator("shares")
    @classmethod
    def _known_tiers(cls, shares: dict[str, float]) -> dict[str, float]:
        for tier, share in shares.items():
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"share of {tier!r} must be in [0, 1], got {share}")
        return shares

    @model_validator(mode="after")
    def _sum(self) -> TargetsConfig:
        if sum(self.shares.values()) > 1.0 + 1e-9:
            raise ValueError("the shares add up to more than 1")
        return self

    def quantiles(self) -> dict[str, float]:
        """Tier → the score quantile below which a request may not go to that tier."""
        out: dict[str, float] = {}
        above = 0.0
        for tier in reversed(TIERS):
            if tier in self.shares:
                above += self.shares[tier]
                out[tier] = max(0.0, 1.0 - above)
        return out
