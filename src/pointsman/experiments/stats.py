"""The statistics of experiment reports: 95% intervals for means (normal approximation,
sample variance), proportions (Wilson score) and quantiles (order statistics, distribution
free), and the two comparisons of a verdict: the relative cost difference (delta method)
and a one-sided non-inferiority test of quality at a margin (Welch standard error).

Normal approximations: the report says how many labels each figure rests on, and
``tests/test_experiment_stats.py`` checks by simulation that the intervals cover the true
value about 95% of the time at the sample sizes a report shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

Z = NormalDist().inv_cdf(0.975)
PHI = NormalDist().cdf


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": [self.low, self.high], "n": self.n}


NONE = Estimate(None, None, None, 0)


def _var(values: Sequence[float], mean: float) -> float:
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def mean_ci(values: Sequence[float]) -> Estimate:
    n = len(values)
    if n == 0:
        return NONE
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, None, None, 1)
    half = Z * math.sqrt(_var(values, mean) / n)
    return Estimate(mean, mean - half, mean + half, n)


def proportion_ci(hits: int, n: int) -> Estimate:
    """Wilson's score interval (good near 0 and 1, where a strong share often is)."""
    if n == 0:
        return NONE
    p = hits / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def quantile_ci(values: Sequence[float], q: float = 0.95) -> Estimate:
    """The q-quantile with the order-statistic interval (ranks from the binomial's normal
    approximation, clipped to the sample)."""
    n = len(values)
    if n == 0:
        return NONE
    ordered = sorted(values)
    at = min(n - 1, max(0, math.ceil(q * n) - 1))
    spread = Z * math.sqrt(n * q * (1 - q))
    low = min(n - 1, max(0, math.floor(q * n - spread) - 1))
    high = min(n - 1, max(0, math.ceil(q * n + spread) - 1))
    return Estimate(ordered[at], ordered[low], ordered[high], n)


@dataclass(frozen=True, slots=True)
class Difference:
    value: float
    low: float
    high: float
    p: float | None = None  # of the one-sided test, where one was made


def mean_difference(treated: Sequence[float], control: Sequence[float],
                    margin: float = 0.0) -> Difference | None:
    """treated − control with its 95% interval, and the p-value of the non-inferiority
    test H0: difference ≤ −margin (small p: the treated arm is at most ``margin`` worse)."""
    if len(treated) < 2 or len(control) < 2:
        return None
    mt, mc = sum(treated) / len(treated), sum(control) / len(control)
    se = math.sqrt(_var(treated, mt) / len(treated) + _var(control, mc) / len(control))
    diff = mt - mc
    if se == 0:
        return Difference(diff, diff, diff, 0.0 if diff > -margin else 1.0)
    return Difference(diff, diff - Z * se, diff + Z * se, 1 - PHI((diff + margin) / se))


def relative_difference(treated: Sequence[float], control: Sequence[float]
                        ) -> Difference | None:
    """(mean treated / mean control) − 1 with its delta-method 95% interval."""
    if len(treated) < 2 or len(control) < 2:
        return None
    mt, mc = sum(treated) / len(treated), sum(control) / len(control)
    if mc <= 0:
        return None
    ratio = mt / mc
    var = (_var(treated, mt) / len(treated) + ratio * ratio * _var(control, mc)
           / len(control)) / (mc * mc)
    half = Z * math.sqrt(var)
    two_sided = 2 * (1 - PHI(abs(ratio - 1) / math.sqrt(var))) if var > 0 else 0.0
    return Difference(ratio - 1, ratio - 1 - half, ratio - 1 + half, two_sided)
