"""Many-model metrics, as RouterBench defines them (pure numpy).

A router operating point is ``(average cost per request, average quality)`` over the test
prompts. A router with a knob (λ, a threshold) traces several points.

* **Pareto front**: the non-decreasing convex hull of a set of points: drop every point
  that a cheaper (or equally cheap) point matches in quality, then keep the upper convex
  hull. Mixing two operating points at random reaches any point on the segment between
  them, which is why the hull, not the raw points, is the router's achievable curve.
* **AIQ** (average improvement in quality): the area under the hull over the cost range
  ``[c_min, c_max]`` divided by ``c_max - c_min``, i.e. the mean quality the router offers
  over that range. The lab uses one range for every router on a data set: from the
  cheapest to the dearest single model's average cost on the test prompts, so AIQs are
  comparable. Beyond its dearest point the hull stays flat (spending more is never
  forced); below its cheapest point the router cannot operate and counts as quality 0.
* **cost to reach** a quality: the smallest cost at which the hull reaches it;
  **quality within a budget**: the hull's quality at that cost (``None`` when the router's
  cheapest point is dearer than the budget).

Missing outcomes (``nan``) are unknown, not failures. A single model's quality and cost
are its means over the known cells. When a router or the oracle picks a cell that is
unknown, it counts as that model's mean over the known cells of the same prompts (the
expectation if cells are missing at random); the same for unknown costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from pointsman.errors import DataError
from pointsman.learning import FloatArray

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Hull:
    """The non-decreasing convex hull: costs and qualities, both increasing."""

    cost: FloatArray
    quality: FloatArray

    def at(self, cost: float) -> float | None:
        if cost < self.cost[0] - 1e-15:
            return None
        return float(np.interp(cost, self.cost, self.quality))

    def points(self) -> list[dict[str, float]]:
        return [{"cost": float(c), "quality": float(q)}
                for c, q in zip(self.cost, self.quality, strict=True)]


def column_means(values: FloatArray) -> FloatArray:
    """Mean of each column over its known (non-nan) cells; ``nan`` for an empty column."""
    known = ~np.isnan(values)
    counts = known.sum(axis=0)
    sums = np.where(known, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def filled(values: FloatArray) -> FloatArray:
    """``values`` with each unknown cell replaced by its column's known mean."""
    means = np.nan_to_num(column_means(values), nan=0.0)
    return np.where(np.isnan(values), means[np.newaxis, :], values)


def choice_point(choice: IntArray, quality: FloatArray, cost: FloatArray) -> tuple[float, float]:
    """(average cost, average quality) when prompt ``i`` goes to model ``choice[i]``."""
    rows = np.arange(len(choice))
    return (float(np.mean(filled(cost)[rows, choice])),
            float(np.mean(filled(quality)[rows, choice])))


def oracle_choice(quality: FloatArray, cost: FloatArray) -> IntArray:
    """Per prompt, the cheapest model among those with the best known quality."""
    q = np.where(np.isnan(quality), -np.inf, quality)
    best = q.max(axis=1, keepdims=True)
    c = np.where(q >= best - 1e-12, filled(cost), np.inf)
    return np.asarray(np.argmin(c, axis=1), dtype=np.int64)


def pareto_hull(cost: FloatArray, quality: FloatArray) -> Hull:
    """The non-decreasing convex hull of the points ``(cost[i], quality[i])``."""
    ok = ~(np.isnan(cost) | np.isnan(quality))
    if not ok.any():
        raise DataError("no operating point has a known cost and quality")
    c, q = cost[ok], quality[ok]
    front: list[tuple[float, float]] = []
    for i in np.lexsort((-q, c)):
        if not front or q[i] > front[-1][1] + 1e-12:
            front.append((float(c[i]), float(q[i])))
    hull: list[tuple[float, float]] = []
    for point in front:
        while len(hull) >= 2 and _turn(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return Hull(np.array([p[0] for p in hull]), np.array([p[1] for p in hull]))


def _turn(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def aiq(hull: Hull, c_min: float, c_max: float) -> float:
    """Mean of the hull's quality over ``[c_min, c_max]`` (see module docstring)."""
    if c_max < c_min:
        raise DataError(f"AIQ cost range is empty: {c_min} > {c_max}")
    if c_max == c_min:
        return hull.at(c_min) or 0.0
    inner = hull.cost[(hull.cost > c_min) & (hull.cost < c_max)]
    xs = np.concatenate([[c_min], inner, [c_max]])
    area = 0.0
    for lo, hi in pairwise(xs):
        if hi <= hull.cost[0] - 1e-15 or lo < hull.cost[0] - 1e-15:
            continue  # below the router's cheapest point: quality 0
        ys = np.interp([lo, hi], hull.cost, hull.quality)
        area += (hi - lo) * float(ys[0] + ys[1]) / 2.0
    return area / (c_max - c_min)


def cost_to_reach(hull: Hull, target: float) -> float | None:
    """Smallest cost at which the hull's quality reaches ``target`` (``None`` if never)."""
    reached = np.flatnonzero(hull.quality >= target - 1e-12)
    if reached.size == 0:
        return None
    k = int(reached[0])
    if k == 0:
        return float(hull.cost[0])
    c0, c1, q0, q1 = hull.cost[k - 1], hull.cost[k], hull.quality[k - 1], hull.quality[k]
    return float(c0 + (target - q0) / (q1 - q0) * (c1 - c0))


def quality_within_budget(hull: Hull, budget: float) -> float | None:
    """Best hull quality at an average cost of at most ``budget``."""
    return hull.at(budget)


def singles(quality: FloatArray, cost: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each model's (average cost, average quality) over its known cells."""
    return column_means(cost), column_means(quality)
