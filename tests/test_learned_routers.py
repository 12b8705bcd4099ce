"""The learned routers on small synthetic outcome tables where the right answer is known."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from pointsman.errors import ConfigError, DataError
from pointsman.learned.classifier import LogisticLearner
from pointsman.learned.knn import KnnLearner
from pointsman.learned.mf import MatrixFactorisationLearner
from pointsman.learned.utility import cheapest_within, choose_by_utility, relative_cost
from pointsman.learning import Learner, OutcomeTable, strong_win_score
from pointsman.registry import learners

HARD = ["prove the theorem about prime numbers {}", "derive the integral of the series {}",
        "solve the differential equation system {}"]
EASY = ["hello there how are you {}", "say hi to my friend {}", "good morning dear {}"]


def table(n: int = 60) -> OutcomeTable:
    """Weak model right on easy prompts only; strong model right on all of them."""
    prompts, quality = [], []
    for i in range(n):
        hard = i % 2 == 0
        prompts.append((HARD if hard else EASY)[i % 3].format(i))
        quality.append([0.0 if hard else 1.0, 1.0])
    return OutcomeTable(tuple(prompts), ("weak", "strong"), np.array(quality))


def make(name: str, **options: Any) -> Learner:
    opts: Mapping[str, Any] = {"encoder": "hashing", **options}
    return learners.get(name)(opts)


@pytest.mark.parametrize("name", ["knn", "logreg", "mf", "ensemble"])
def test_each_learner_sends_hard_prompts_to_the_strong_model(name: str) -> None:
    learner = make(name)
    learner.fit(table())
    quality = learner.predict_quality(["prove the theorem about prime numbers 999",
                                       "hello there how are you 999"])
    assert quality.shape == (2, 2)
    assert np.all((quality >= 0) & (quality <= 1))
    score = strong_win_score(quality, strong=1, weak=0)
    assert score[0] > 0.7 > 0.55 > score[1]


def test_knn_weightings_and_unknown_cells() -> None:
    base = table(40)
    quality = base.quality.copy()
    quality[::4, 0] = np.nan  # unknown outcomes do not count as failures
    data = OutcomeTable(base.prompts, base.models, quality)
    for weighting in ("uniform", "similarity", "softmax"):
        learner = KnnLearner({"encoder": "hashing", "k": 5, "weighting": weighting,
                              "prior_strength": 0})
        learner.fit(data)
        easy = learner.predict_quality(["say hi to my friend 77"])[0]
        assert easy[0] == pytest.approx(1.0) and easy[1] == pytest.approx(1.0)


def test_logreg_without_cheap_features_and_constant_column() -> None:
    data = table(30)
    flat = OutcomeTable(data.prompts, data.models,
                        np.column_stack([data.quality[:, 0], np.ones(30)]))
    learner = LogisticLearner({"encoder": "hashing", "cheap_features": "off"})
    learner.fit(flat)
    strong = learner.predict_quality(["anything at all"])[0, 1]
    assert strong == pytest.approx(31 / 32)  # smoothed success rate of an all-1 column


def test_mf_uses_all_models() -> None:
    data = table(40)
    three = OutcomeTable(data.prompts, ("weak", "strong", "mid"),
                         np.column_stack([data.quality, data.quality[:, 0]]))
    learner = MatrixFactorisationLearner({"encoder": "hashing", "rank": 4, "epochs": 200,
                                          "learning_rate": 0.05})
    learner.fit(three)
    hard, easy = learner.predict_quality(["derive the integral of the series 5",
                                          "good morning dear 5"])
    assert hard[2] < 0.5 < easy[2]


def test_bad_options_and_unfitted_use_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown options"):
        learners.get("knn")({"kk": 3})
    with pytest.raises(ConfigError, match="'k' must be"):
        learners.get("knn")({"k": "many"})
    with pytest.raises(ConfigError, match="weighting"):
        learners.get("knn")({"weighting": "gaussian"})
    with pytest.raises(DataError, match="not fitted"):
        make("knn").predict_quality(["x"])
    empty = OutcomeTable((), ("a",), np.zeros((0, 1)))
    with pytest.raises(DataError, match="empty"):
        make("logreg").fit(empty)


def test_many_model_choice_by_quality_and_cost() -> None:
    quality = np.array([0.60, 0.80, 0.82])
    costs = np.array([0.1, 1.0, 10.0])
    assert choose_by_utility(quality, costs, 0.0) == 2
    assert choose_by_utility(quality, costs, 0.1) == 1      # 0.82-0.1 < 0.80-0.01
    assert choose_by_utility(quality, costs, 5.0) == 0
    assert cheapest_within(quality, costs, 0.95) == 1
    assert cheapest_within(quality, costs, 0.70) == 0
    assert relative_cost(np.array([1.0, np.nan]), 2).tolist() == [1.0, 1.0]
    assert relative_cost(None, 3).tolist() == [0.0, 0.0, 0.0]


def test_ensemble_members_and_options() -> None:
    learner = learners.get("ensemble")({"encoder": "hashing", "members": "knn,logreg",
                                        "member_options": {"knn": {"k": 3}}})
    learner.fit(table(20))
    assert learner.models == ("weak", "strong")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="members"):
        learners.get("ensemble")({"members": "knn,svm"})
