"""Two-model metrics, as RouteLLM defines them (pure numpy).

A two-model router gives each prompt a score; the higher the score, the sooner the
prompt goes to the strong model. Sweeping a threshold from above the highest score to
below the lowest moves the share of strong calls from 0 to 1 and traces quality
(mean correctness) against that share.

Ties and missing scores (documented, tested):

* **ties** are split by *fractional interpolation*: the curve is exact at the shares
  reachable by a threshold (the boundaries between groups of equal scores) and linear in
  between, i.e. the prompts of a tied group that straddles the requested share count as
  partly strong. This equals the expectation over random tie-breaking, does not depend on
  the order of the prompts, and makes a constant-score router exactly the random router.
* **missing scores** (``nan``) are ranked below every real score, as one tied group: they
  go to the strong model last.

Definitions (``w``, ``s``: the weak and strong model's mean quality on the same prompts):

* ``PGR(q) = (q - w) / (s - w)``, the performance gap recovered;
* ``CPT(x)``: the smallest share of strong calls at which PGR reaches ``x``, read off the
  piecewise-linear curve (``None`` when it never does);
* ``APGR``: the area under PGR over the share of strong calls from 0 to 1, computed
  exactly on the piecewise-linear curve (trapezoids between its breakpoints);
* random router: the straight line from ``(0, w)`` to ``(1, s)`` (APGR 0.5);
* oracle: sends a prompt to the strong model exactly when it gains from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointsman.errors import DataError
from pointsman.learning import FloatArray

CPT_LEVELS: tuple[float, ...] = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class ShareCurve:
    """Quality against the share of strong calls, exact at ``share`` (increasing)."""

    share: FloatArray
    quality: FloatArray
    threshold: FloatArray  # the score threshold reaching each share (``inf`` for share 0)

    def at(self, share: float | FloatArray) -> FloatArray:
        """Quality at any share (linear between breakpoints, i.e. fractional ties)."""
        return np.asarray(np.interp(share, self.share, self.quality), dtype=np.float64)

    def sampled(self, points: int = 101) -> list[dict[str, float]]:
        grid = np.linspace(0.0, 1.0, points)
        return [{"strong_share": round(float(x), 4), "quality": float(q)}
                for x, q in zip(grid, self.at(grid), strict=True)]


@dataclass(frozen=True)
class TwoModelMetrics:
    weak: float
    strong: float
    curve: ShareCurve
    apgr: float
    cpt: dict[float, float | None]


def sort_key(scores: FloatArray) -> FloatArray:
    return np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=np.float64))


def share_curve(scores: FloatArray, weak_q: FloatArray, strong_q: FloatArray) -> ShareCurve:
    """The exact breakpoints of the quality/strong-share curve (see module docstring)."""
    n = len(scores)
    if n == 0 or len(weak_q) != n or len(strong_q) != n:
        raise DataError(f"share_curve needs equal, non-empty inputs (got {n}, {len(weak_q)}, "
                        f"{len(strong_q)})")
    key = sort_key(scores)
    order = np.argsort(-key, kind="stable")
    ranked = key[order]
    gain = np.concatenate([[0.0], np.cumsum((strong_q - weak_q)[order])])
    cuts = np.flatnonzero(ranked[1:] != ranked[:-1]) + 1
    idx = np.concatenate([[0], cuts, [n]])
    thresholds = np.concatenate([[np.inf], ranked[idx[1:] - 1]])
    quality = (float(np.sum(weak_q)) + gain[idx]) / n
    return ShareCurve(idx / n, quality, thresholds)


def pgr(quality: float | FloatArray, weak: float, strong: float) -> FloatArray:
    if strong == weak:
        raise DataError(f"PGR is undefined: the strong and weak model have the same quality "
                        f"({strong:.4f}) on these prompts")
    return np.asarray((np.asarray(quality) - weak) / (strong - weak), dtype=np.float64)


def apgr(curve: ShareCurve, weak: float, strong: float) -> float:
    """Area under PGR over the strong share in [0, 1] (exact on the linear pieces)."""
    values = pgr(curve.quality, weak, strong)
    widths = np.diff(curve.share)
    return float(np.sum(widths * (values[1:] + values[:-1]) / 2.0))


def cpt(curve: ShareCurve, weak: float, strong: float, level: float) -> float | None:
    """Smallest strong share whose PGR reaches ``level`` (``None`` if never)."""
    values = pgr(curve.quality, weak, strong)
    reached = np.flatnonzero(values >= level - 1e-12)
    if reached.size == 0:
        return None
    k = int(reached[0])
    if k == 0:
        return float(curve.share[0])
    lo, hi = values[k - 1], values[k]
    frac = (level - lo) / (hi - lo)
    return float(curve.share[k - 1] + frac * (curve.share[k] - curve.share[k - 1]))


def two_model_metrics(scores: FloatArray, weak_q: FloatArray,
                      strong_q: FloatArray) -> TwoModelMetrics:
    """Curve, APGR and CPT(20/50/80 %) of a router's scores on the same prompts."""
    weak, strong = float(np.mean(weak_q)), float(np.mean(strong_q))
    curve = share_curve(scores, weak_q, strong_q)
    return TwoModelMetrics(weak, strong, curve, apgr(curve, weak, strong),
                           {lv: cpt(curve, weak, strong, lv) for lv in CPT_LEVELS})


def oracle_scores(weak_q: FloatArray, strong_q: FloatArray) -> FloatArray:
    """The oracle's score: the gain from the strong model (strong first where it helps)."""
    return np.asarray(strong_q - weak_q, dtype=np.float64)


def oracle_point(weak_q: FloatArray, strong_q: FloatArray) -> tuple[float, float]:
    """(strong share, quality) of the oracle: strong exactly when it is better."""
    strong_calls = strong_q > weak_q
    quality = np.where(strong_calls, strong_q, weak_q)
    return float(np.mean(strong_calls)), float(np.mean(quality))


def only_strong_right(weak_q: FloatArray, strong_q: FloatArray) -> FloatArray:
    """The label a two-model score should rank first: the strong model is strictly better."""
    return np.asarray(strong_q > weak_q, dtype=np.float64)


def roc_auc(scores: FloatArray, weak_q: FloatArray, strong_q: FloatArray) -> float | None:
    """ROC AUC of the scores against "only the strong model was right" (nan scores lowest).

    ``None`` when the label has a single class on these prompts.
    """
    from sklearn.metrics import roc_auc_score

    labels = only_strong_right(weak_q, strong_q)
    if labels.min() == labels.max():
        return None
    key = sort_key(scores)
    finite = key[np.isfinite(key)]
    floor = (float(finite.min()) - 1.0) if finite.size else 0.0
    return float(roc_auc_score(labels, np.where(np.isfinite(key), key, floor)))


def fixed_point(choice_strong: FloatArray, weak_q: FloatArray,
                strong_q: FloatArray) -> tuple[float, float]:
    """(strong share, quality) of a router that makes hard choices (1 = strong)."""
    chosen = np.where(choice_strong > 0.5, strong_q, weak_q)
    return float(np.mean(choice_strong > 0.5)), float(np.mean(chosen))


def threshold_for_share(scores: FloatArray, share: float) -> tuple[float, float]:
    """The threshold ``t`` (strong when score ≥ t) whose share of strong calls on these
    scores is closest to ``share`` (the lower share on a draw), and that share.

    This is RouteLLM's calibration (the ``1 - share`` quantile of the scores), made exact:
    tied scores fall on the same side, so the share reached can differ from the one asked
    for; it is reported. Missing scores never reach any threshold.
    """
    if not 0.0 <= share <= 1.0:
        raise DataError(f"strong share must be in [0, 1], got {share}")
    key = sort_key(scores)
    finite = key[np.isfinite(key)]
    if finite.size == 0:
        raise DataError("no prompt has a score; cannot calibrate a threshold")
    values = np.unique(finite)[::-1]
    counts = len(key) - np.searchsorted(np.sort(key), values, side="left")
    options = np.concatenate([[np.nextafter(values[0], np.inf)], values])
    shares = np.concatenate([[0.0], counts / len(key)])
    best = int(np.argmin(np.abs(shares - share) + 1e-12 * shares))
    return float(options[best]), float(shares[best])
