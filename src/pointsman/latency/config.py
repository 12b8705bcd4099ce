"""The ``latency`` config section: windows, targets and use-case presets, the bandit.

Strict pydantic models (unknown keys are refused). Example::

    latency:
      store: redis                      # memory (one process) or redis (shared by replicas)
      window: {seconds: 300, max_samples: 1000, min_samples: 5}
      targets:
        mode: exclude                   # or penalise
        use_cases:
          autocomplete: {target_ms: 200, metric: ttft}
          batch: {target_ms: null}
      bandit: {exploration: 0.2, discount: 0.995}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pointsman.redis_config import check_prefix, check_url

Metric = Literal["ttft", "total"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowConfig(_Strict):
    """A sliding window bounded by time (``seconds``) and by count (``max_samples``)."""

    seconds: float = Field(default=300.0, gt=0)
    max_samples: int = Field(default=1000, ge=1, le=100_000)
    min_samples: int = Field(default=5, ge=1)


class UseCase(_Strict):
    """A named latency target, selected by request metadata ``use_case``.
    ``target_ms: null`` means no target (batch work)."""

    target_ms: float | None = Field(default=None, gt=0)
    metric: Metric = "ttft"


def _default_use_cases() -> dict[str, UseCase]:
    return {
        "autocomplete": UseCase(target_ms=200, metric="ttft"),
        "chat": UseCase(target_ms=500, metric="ttft"),
        "document_analysis": UseCase(target_ms=5000, metric="total"),
        "batch": UseCase(target_ms=None),
    }


class TargetsConfig(_Strict):
    """How a latency target steers routing.

    ``exclude`` drops candidates whose p95 exceeds the target; ``penalise`` subtracts
    ``penalty`` from their weighted score. When no candidate meets the target, the
    fastest is taken either way. Models with fewer than ``window.min_samples`` live samples
    are judged on the catalog's typical latency when ``use_catalog_prior`` is on, else
    they are assumed to meet the target.
    """

    mode: Literal["exclude", "penalise"] = "exclude"
    penalty: float = Field(default=0.3, ge=0)
    metric: Metric = "ttft"
    use_catalog_prior: bool = True
    use_cases: dict[str, UseCase] = Field(default_factory=_default_use_cases)


class RewardWeights(_Strict):
    """Reward of one attempt in [0, 1]: ``success·ok + latency·ref/(ref + ms) +
    cost·ref/(ref + usd)``, divided by the sum of the weights; a failure scores 0."""

    success: float = Field(default=0.5, ge=0)
    latency: float = Field(default=0.4, ge=0)
    cost: float = Field(default=0.1, ge=0)
    latency_ref_ms: float = Field(default=200.0, gt=0)
    cost_ref_usd: float = Field(default=0.01, gt=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> RewardWeights:
        if self.success + self.latency + self.cost <= 0:
            raise ValueError("at least one reward weight must be positive")
        return self


class BanditConfig(_Strict):
    """Discounted UCB1 (or Thompson sampling) over the deployments of one model.

    Every recorded pull multiplies the model's arm statistics by ``discount`` first, so
    the bandit remembers about ``1 / (1 - discount)`` pulls: a slow arm's count decays while
    it is avoided, its exploration bonus grows, and a recovered deployment wins traffic back.
    ``tier_bonus`` > 0 also runs a bandit over the models of each tier, whose index (times
    ``tier_bonus``) is added to the weighted score (:mod:`pointsman.latency.tiers`).
    ``explore_every`` (UCB1): every that many choices for a model, the available deployment that
    has gone longest without being tried first goes first (0: never). The discount alone
    brings a deployment that failed for a while back only after hundreds of pulls; this
    gives it a steady share while it proves it recovered.
    """

    enabled: bool = True
    algorithm: Literal["ucb1", "thompson"] = "ucb1"
    explore_every: int = Field(default=20, ge=0)
    exploration: float = Field(default=0.2, ge=0)
    discount: float = Field(default=0.995, gt=0, le=1)
    reward: RewardWeights = RewardWeights()
    cache_s: float = Field(default=0.25, ge=0)
    tier_bonus: float = Field(default=0.0, ge=0, le=1)


class LatencyConfig(_Strict):
    """``enabled: false`` switches off the live windows and latency targets (the weighted
    score then uses the catalog's typical latency); the bandit has its own ``enabled``."""

    enabled: bool = True
    store: Literal["memory", "redis"] = "memory"
    # Overrides of the top-level ``redis`` section for this store (None: use it; the
    # prefix then is ``redis.prefix`` + "latency:"); see pointsman.redis_config.
    redis_url: str | None = None
    redis_prefix: str | None = None
    socket_timeout_s: float | None = Field(default=None, gt=0, le=60)
    refresh_s: float = Field(default=1.0, ge=0)
    window: WindowConfig = WindowConfig()
    targets: TargetsConfig = TargetsConfig()
    bandit: BanditConfig = BanditConfig()

    _url = field_validator("redis_url")(check_url)
    _prefix = field_validator("redis_prefix")(check_prefix)
