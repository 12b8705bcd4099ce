"""Choosing among many models from predicted quality and cost.

``choose_by_utility`` maximises ``q̂ − λ × cost / max(cost)`` (cost normalised so λ is in
quality units: λ = 0.1 gives up 0.1 of predicted quality to go from the dearest model to
a free one). ``cheapest_within`` takes the cheapest model whose ``q̂`` is at least
``target × max(q̂)``. Unknown costs (nan) count as the dearest.
"""

from __future__ import annotations

import numpy as np

from pointsman.learning import FloatArray


def relative_cost(costs: FloatArray | None, m: int, top: float | None = None) -> FloatArray:
    """Costs divided by ``top`` (default: the dearest of ``costs``); unknown = 1."""
    if costs is None or not np.isfinite(costs).any():
        return np.zeros(m)
    top = top or float(np.nanmax(costs)) or 1.0
    return np.asarray(np.where(np.isnan(costs), 1.0, costs / top), dtype=np.float64)


def choose_by_utility(quality: FloatArray, costs: FloatArray | None, lam: float,
                      top: float | None = None) -> int:
    """Index of the best model for one prompt (ties go to the cheaper)."""
    rel = relative_cost(costs, len(quality), top)
    utility = np.nan_to_num(quality, nan=-1.0) - lam * rel
    best = np.flatnonzero(utility >= utility.max() - 1e-12)
    return int(best[np.argmin(rel[best])])


def cheapest_within(quality: FloatArray, costs: FloatArray | None, target: float) -> int:
    q = np.nan_to_num(quality, nan=-1.0)
    rel = relative_cost(costs, len(q))
    ok = np.flatnonzero(q >= target * q.max())
    return int(ok[np.argmin(rel[ok])])


def utility_choices(quality: FloatArray, costs: FloatArray | None, lam: float) -> FloatArray:
    """Row-wise :func:`choose_by_utility` for an n × m array (indices as floats)."""
    return np.array([choose_by_utility(row, costs, lam) for row in quality], dtype=np.float64)
