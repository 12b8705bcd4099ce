"""The experiment statistics by simulation: over many simulated experiments with a known
true difference, the reported 95% intervals cover it about 95% of the time."""

from __future__ import annotations

import numpy as np

from pointsman.experiments.stats import (
    mean_ci,
    mean_difference,
    proportion_ci,
    quantile_ci,
    relative_difference,
)

RUNS = 2000


def share(hits: int) -> float:
    return hits / RUNS


def test_quality_difference_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(7)
    p_control, p_treated = 0.80, 0.74  # thumbs up rates; true difference −0.06
    covered = 0
    for _ in range(RUNS):
        control = rng.binomial(1, p_control, 400).astype(float).tolist()
        treated = rng.binomial(1, p_treated, 300).astype(float).tolist()
        diff = mean_difference(treated, control, margin=0.02)
        assert diff is not None
        covered += diff.low <= p_treated - p_control <= diff.high
    assert 0.93 <= share(covered) <= 0.97


def test_non_inferiority_p_value_rejects_about_5_percent_at_the_margin() -> None:
    rng = np.random.default_rng(11)
    margin = 0.05
    rejected = 0
    for _ in range(RUNS):  # the truth is exactly on the boundary: H0 holds
        control = rng.normal(0.70, 0.2, 300).tolist()
        treated = rng.normal(0.70 - margin, 0.2, 300).tolist()
        diff = mean_difference(treated, control, margin)
        assert diff is not None and diff.p is not None
        rejected += diff.p < 0.05
    assert 0.03 <= share(rejected) <= 0.07


def test_cost_ratio_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(3)
    # skewed per-request costs (lognormal): B's true mean is 59% of A's
    mean_a, mean_b = np.exp(-6 + 0.5), 0.59 * np.exp(-6 + 0.5)
    covered = 0
    for _ in range(RUNS):
        a = rng.lognormal(-6, 1.0, 500).tolist()
        b = (0.59 * rng.lognormal(-6, 1.0, 500)).tolist()
        change = relative_difference(b, a)
        assert change is not None
        covered += change.low <= mean_b / mean_a - 1 <= change.high
    assert 0.93 <= share(covered) <= 0.97


def test_mean_share_and_p95_intervals_cover_the_truth() -> None:
    rng = np.random.default_rng(5)
    true_p95 = float(np.exp(np.log(200) + 0.5 * 1.6448536))  # of lognormal(log 200, 0.5)
    mean_hits = share_hits = p95_hits = 0
    for _ in range(RUNS):
        quality = rng.beta(8, 2, 200).tolist()  # mean 0.8
        strong = int(rng.binomial(300, 0.04))  # a strong share near 0
        latency = rng.lognormal(np.log(200), 0.5, 400).tolist()
        m, s, q = mean_ci(quality), proportion_ci(strong, 300), quantile_ci(latency)
        assert None not in (m.low, m.high, s.low, s.high, q.low, q.high)
        mean_hits += m.low <= 0.8 <= m.high  # type: ignore[operator]
        share_hits += s.low <= 0.04 <= s.high  # type: ignore[operator]
        p95_hits += q.low <= true_p95 <= q.high  # type: ignore[operator]
    for hits in (mean_hits, share_hits, p95_hits):
        assert 0.93 <= share(hits) <= 0.975, (mean_hits, share_hits, p95_hits)
