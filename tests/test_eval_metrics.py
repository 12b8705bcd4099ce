"""Metric functions of the evaluation lab against small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pointsman.errors import DataError
from pointsman.evaluation import metrics as tm
from pointsman.evaluation import pareto as pm
from pointsman.evaluation import sweep as sw
from pointsman.learning import OutcomeTable

# four prompts: gains from the strong model +1, 0, 0, +1 -> weak 0.25, strong 0.75
WEAK = np.array([0.0, 1.0, 0.0, 0.0])
STRONG = np.array([1.0, 1.0, 0.0, 1.0])


def test_share_curve_breakpoints_pgr_apgr_and_cpt() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.7])
    curve = tm.share_curve(scores, WEAK, STRONG)
    assert curve.share.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert curve.quality.tolist() == [0.25, 0.5, 0.75, 0.75]
    assert curve.threshold.tolist() == [np.inf, 0.9, 0.7, 0.5]
    assert tm.pgr(curve.quality, 0.25, 0.75).tolist() == [0.0, 0.5, 1.0, 1.0]
    found = tm.two_model_metrics(scores, WEAK, STRONG)
    assert found.weak == 0.25 and found.strong == 0.75
    assert found.apgr == pytest.approx(0.0625 + 0.1875 + 0.5)
    assert found.cpt[0.2] == pytest.approx(0.1)
    assert found.cpt[0.5] == pytest.approx(0.25)
    assert found.cpt[0.8] == pytest.approx(0.4)


def test_cpt_is_none_when_never_reached() -> None:
    curve = tm.share_curve(np.array([0.1, 0.9, 0.5, 0.5]), WEAK, STRONG)
    # the strong-helping prompts ranked last-ish: PGR reaches 1 only at share 1
    assert tm.cpt(curve, 0.25, 0.75, 1.5) is None
    assert tm.cpt(curve, 0.25, 0.75, 1.0) == pytest.approx(1.0)


def test_ties_are_split_fractionally_and_order_does_not_matter() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5])  # p1..p3 tied, gains 0, 0, +1
    curve = tm.share_curve(scores, WEAK, STRONG)
    assert curve.share.tolist() == [0.0, 0.25, 1.0]
    # at share 0.5, one of the three tied prompts counts as strong: 1/3 of their gain
    assert float(curve.at(0.5)) == pytest.approx(0.25 + (1 + 1 / 3) / 4)
    perm = np.array([3, 1, 0, 2])
    again = tm.share_curve(scores[perm], WEAK[perm], STRONG[perm])
    assert np.allclose(again.quality, curve.quality) and np.allclose(again.share, curve.share)


def test_constant_scores_are_exactly_the_random_router() -> None:
    found = tm.two_model_metrics(np.full(4, 0.3), WEAK, STRONG)
    assert found.apgr == pytest.approx(0.5)
    assert found.cpt[0.5] == pytest.approx(0.5)
    assert found.cpt[0.8] == pytest.approx(0.8)


def test_missing_scores_go_to_the_strong_model_last() -> None:
    scores = np.array([np.nan, 0.5, 0.2, 0.9])
    curve = tm.share_curve(scores, WEAK, STRONG)
    # order: p3 (0.9, +1), p1 (0.5, 0), p2 (0.2, 0), then p0 (nan, +1)
    assert curve.quality.tolist() == [0.25, 0.5, 0.5, 0.5, 0.75]
    all_nan = tm.share_curve(np.full(4, np.nan), WEAK, STRONG)
    assert all_nan.share.tolist() == [0.0, 1.0]


def test_pgr_undefined_when_models_are_equal() -> None:
    with pytest.raises(DataError, match="same quality"):
        tm.two_model_metrics(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))


def test_oracle_point_and_scores() -> None:
    assert tm.oracle_point(WEAK, STRONG) == (0.5, 0.75)  # p2 is wrong on both
    oracle = tm.two_model_metrics(tm.oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert tm.cpt(oracle.curve, 0.25, 0.75, 1.0) == pytest.approx(0.5)
    # PGR rises linearly to 1 at share 0.5 then stays: area 0.25 + 0.5
    assert oracle.apgr == pytest.approx(0.75)


def test_threshold_for_share_picks_the_closest_reachable_share() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    assert tm.threshold_for_share(scores, 0.5) == (0.9, 0.25)  # 0.25 and 0.75 tie: lower
    assert tm.threshold_for_share(scores, 0.7) == (0.5, 0.75)
    assert tm.threshold_for_share(scores, 1.0) == (0.1, 1.0)
    t, share = tm.threshold_for_share(scores, 0.0)
    assert share == 0.0 and t > 0.9
    with pytest.raises(DataError):
        tm.threshold_for_share(scores, 1.5)


def test_roc_auc_against_only_strong_right() -> None:
    # positives p0, p3; scores rank p3 > p0 > p1 = p2: every positive above every negative
    assert tm.roc_auc(np.array([0.8, 0.5, 0.5, 0.9]), WEAK, STRONG) == pytest.approx(1.0)
    assert tm.roc_auc(np.array([np.nan, 0.5, 0.2, 0.9]), WEAK, STRONG) == pytest.approx(0.5)
    assert tm.roc_auc(np.zeros(2), np.zeros(2), np.zeros(2)) is None


# -- many models -----------------------------------------------------------------------
def test_pareto_hull_drops_dominated_and_concave_points() -> None:
    cost = np.array([1.0, 2.0, 3.0, 2.5, 4.0, np.nan])
    quality = np.array([0.5, 0.6, 0.9, 0.55, 0.85, 1.0])
    hull = pm.pareto_hull(cost, quality)
    assert hull.cost.tolist() == [1.0, 3.0] and hull.quality.tolist() == [0.5, 0.9]


def test_aiq_cost_to_reach_and_budget() -> None:
    hull = pm.pareto_hull(np.array([1.0, 3.0]), np.array([0.5, 0.9]))
    assert pm.aiq(hull, 1.0, 4.0) == pytest.approx((1.4 + 0.9) / 3)
    assert pm.aiq(hull, 0.0, 4.0) == pytest.approx(2.3 / 4)  # below cost 1: quality 0
    assert pm.aiq(hull, 2.0, 2.0) == pytest.approx(0.7)
    assert pm.cost_to_reach(hull, 0.7) == pytest.approx(2.0)
    assert pm.cost_to_reach(hull, 0.4) == pytest.approx(1.0)
    assert pm.cost_to_reach(hull, 0.95) is None
    assert pm.quality_within_budget(hull, 2.0) == pytest.approx(0.7)
    assert pm.quality_within_budget(hull, 10.0) == pytest.approx(0.9)
    assert pm.quality_within_budget(hull, 0.5) is None


def test_unknown_cells_count_as_the_models_known_mean() -> None:
    quality = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    cost = np.array([[1.0, 2.0], [1.0, np.nan], [1.0, 4.0]])
    assert pm.column_means(quality).tolist() == pytest.approx([2 / 3, 0.5])
    cost_avg, quality_avg = pm.choice_point(np.array([1, 1, 0]), quality, cost)
    assert cost_avg == pytest.approx((2 + 3 + 1) / 3)
    assert quality_avg == pytest.approx((0.5 + 1 + 1) / 3)
    assert pm.oracle_choice(quality, cost).tolist() == [0, 1, 0]


def test_oracle_prefers_the_cheaper_of_equally_good_models() -> None:
    quality = np.array([[1.0, 1.0], [0.0, 0.0]])
    cost = np.array([[3.0, 1.0], [2.0, 5.0]])
    assert pm.oracle_choice(quality, cost).tolist() == [1, 0]


def test_lambda_choice_trades_quality_for_cost() -> None:
    quality, cost = np.array([[0.5, 0.9]]), np.array([1.0, 3.0])
    assert sw.lambda_choice(quality, cost, 0.0).tolist() == [1]
    assert sw.lambda_choice(quality, cost, 0.1).tolist() == [1]
    assert sw.lambda_choice(quality, cost, 0.2).tolist() == [0]  # a tie goes to the cheaper
    assert sw.lambda_choice(quality, cost, 0.3).tolist() == [0]
    assert sw.lambda_choice(quality, cost, np.inf).tolist() == [0]
    grid = sw.lambda_grid(cost)
    assert grid[0] == 0.0 and np.isinf(grid[-1]) and np.all(np.diff(grid) > 0)


def test_score_ladder_uses_the_pareto_front_models() -> None:
    table = OutcomeTable(("a", "b"), ("m0", "m1", "m2"),
                         np.array([[0.5, 0.4, 0.9], [0.5, 0.4, 0.9]]),
                         np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    rungs = sw.ladder(table)
    assert rungs.tolist() == [0, 2]  # m1 is dearer and worse than m0
    scores = np.array([0.2, 0.6, np.nan])
    assert sw.ladder_choice(scores, rungs, 0.0).tolist() == [0, 2, 0]
    assert sw.ladder_choice(scores, rungs, -1.0).tolist() == [0, 0, 0]
    assert sw.ladder_choice(scores, rungs, 1.0).tolist() == [2, 2, 0]
