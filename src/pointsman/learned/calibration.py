"""λ calibration for many-model routing: which λ meets a cost target.

``pointsman train --calibrate-folds K`` fits the learner K times on K-fold splits of the
training table, predicts each held-out prompt, and for a grid of λ records the average
cost and quality of ``argmax q̂ − λ × relative cost`` (costs and qualities of unknown
cells are the column's known mean). The curve is stored in the artifact's metadata;
``scorer_options.cost_target`` (a share of the dearest model's average cost per request)
then picks the best-quality λ whose held-out cost meets the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pointsman.errors import ConfigError, DataError
from pointsman.learned.base import column_means
from pointsman.learned.utility import relative_cost
from pointsman.learning import FloatArray, Learner, OutcomeTable

# λ = 0, then 40 steps from 0.001 to 3 on a log scale (costs are relative: 1 = dearest).
LAMBDAS: tuple[float, ...] = (0.0, *(round(float(x), 6) for x in np.geomspace(0.001, 3.0, 40)))


def out_of_fold(make: Callable[[], Learner], table: OutcomeTable, folds: int,
                seed: int = 0) -> FloatArray:
    """Held-out predicted quality for every row (K-fold, shuffled with ``seed``)."""
    if folds < 2 or len(table) < folds:
        raise DataError(f"calibration needs at least 2 folds and {folds} rows")
    order = np.random.default_rng(seed).permutation(len(table))
    out = np.zeros(table.quality.shape)
    for k in range(folds):
        test = order[k::folds]
        learner = make()
        learner.fit(table.subset(np.setdiff1d(order, test)))
        out[test] = learner.predict_quality([table.prompts[i] for i in test])
    return out


def lambda_curve(predicted: FloatArray, table: OutcomeTable,
                 lambdas: Sequence[float] = LAMBDAS) -> list[dict[str, float]]:
    if table.cost is None:
        raise DataError("cost calibration needs data with per-call costs")
    mean_cost = column_means(table.cost, np.nan)
    rel = relative_cost(mean_cost, len(table.models))
    cost = _filled(table.cost)
    quality = _filled(table.quality)
    dearest = float(np.nanmax(mean_cost))
    rows = np.arange(len(table))
    curve = []
    for lam in lambdas:
        choice = np.argmax(np.nan_to_num(predicted, nan=-1.0) - lam * rel, axis=1)
        curve.append({"lambda": lam,
                      "relative_cost": round(float(cost[rows, choice].mean()) / dearest, 6),
                      "quality": round(float(quality[rows, choice].mean()), 6)})
    return curve


def lambda_for_cost(curve: Any, target: float) -> float:
    """The best-quality λ of ``curve`` whose relative cost is at most ``target``."""
    if not isinstance(curve, list) or not curve:
        raise ConfigError("router.scorer_options.cost_target: the artifact has no λ "
                          "calibration; train it with `pointsman train --calibrate-folds 5`")
    points = [p for p in curve if isinstance(p, Mapping)]
    within = [p for p in points if float(p["relative_cost"]) <= target]
    if not within:
        cheapest = min(float(p["relative_cost"]) for p in points)
        raise ConfigError(f"router.scorer_options.cost_target: {target} is below the "
                          f"cheapest calibrated operating point ({cheapest:.4f})")
    return float(max(within, key=lambda p: (float(p["quality"]), -float(p["lambda"])))
                 ["lambda"])


def _filled(values: FloatArray) -> FloatArray:
    means = np.nan_to_num(column_means(values, np.nan), nan=0.0)
    return np.where(np.isnan(values), means[None, :], values)
