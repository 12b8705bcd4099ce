"""How a many-model router's knob is swept (see :mod:`pointsman.evaluation.lab`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pointsman.evaluation.pareto import column_means
from pointsman.learning import FloatArray, OutcomeTable

IntArray = npt.NDArray[np.int64]
LADDER_SHIFTS: FloatArray = np.linspace(-1.0, 1.0, 201)


def lambda_grid(cost: FloatArray, points: int = 120) -> FloatArray:
    """λ values from 0 to ∞ covering every trade-off between the given mean costs.

    Between two models, the choice flips at λ = Δquality / Δcost; with qualities in
    [0, 1] those lie between ``1e-3 / spread`` and ``1e3 / smallest gap`` of the costs.
    """
    known = np.unique(cost[np.isfinite(cost)])
    if known.size < 2:
        return np.array([0.0, np.inf])
    spread = float(known[-1] - known[0])
    gap = float(np.min(np.diff(known)))
    middle = np.geomspace(1e-3 / spread, 1e3 / max(gap, 1e-12), points)
    return np.concatenate([[0.0], middle, [np.inf]])


def lambda_choice(quality: FloatArray, cost: FloatArray, lam: float) -> IntArray:
    """Per prompt, ``argmax(q_j - λ·c_j)``; ties (and λ = ∞) go to the cheaper model.

    An unknown predicted quality never wins; an unknown cost counts as the dearest.
    """
    c = np.where(np.isfinite(cost), cost, np.nanmax(np.where(np.isfinite(cost), cost, 0)) * 2)
    order = np.argsort(c, kind="stable")
    q = np.where(np.isnan(quality), -np.inf, quality)[:, order]
    if np.isinf(lam):
        return np.full(len(quality), order[0], dtype=np.int64)
    utility = q - lam * c[order][np.newaxis, :]
    return np.asarray(order[np.argmax(utility, axis=1)], dtype=np.int64)


def ladder(train: OutcomeTable) -> IntArray:
    """Columns of the single models on the training data's Pareto front, cheapest first."""
    if train.cost is None:
        raise ValueError("a ladder needs costs")
    cost = np.nan_to_num(column_means(train.cost), nan=np.inf)
    quality = np.nan_to_num(column_means(train.quality), nan=-np.inf)
    rungs: list[int] = []
    for j in np.lexsort((-quality, cost)):
        if not rungs or quality[j] > quality[rungs[-1]]:
            rungs.append(int(j))
    return np.array(rungs, dtype=np.int64)


def ladder_choice(scores: FloatArray, rungs: IntArray, shift: float) -> IntArray:
    """The rung each score reaches after ``shift`` (missing scores: the cheapest rung)."""
    level = np.clip(np.nan_to_num(scores, nan=-np.inf) + shift, 0.0, 1.0)
    steps = np.minimum(len(rungs) - 1, np.floor(level * len(rungs))).astype(np.int64)
    return np.asarray(rungs[steps], dtype=np.int64)
