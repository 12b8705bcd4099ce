"""``pointsman train --router answer-judge``: the answer scorer as a stored learner (the
artifact the gateway cascade's judge ``learned`` loads), and the replay's normaliser
option, the same normalisers the gateway's agreement judge uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pointsman.artifacts import read_artifact, save_learner
from pointsman.config import load_config
from pointsman.errors import ConfigError, DataError
from pointsman.evaluation.lab import evaluate, kfold_plan
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.routers import lab_router
from pointsman.learned.answer_judge import FEATURES, AnswerJudgeLearner, pair_features
from pointsman.learning import OutcomeTable
from pointsman.registry import learners

GSM8K = Path(__file__).parent / "fixtures" / "routellm_gsm8k"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def test_trained_judge_round_trips_through_an_artifact(tmp_path: Path) -> None:
    table = load_table(GSM8K, "routellm")
    learner = learners.get("answer-judge")({"partner": "gpt-4-1106-preview"})
    assert isinstance(learner, AnswerJudgeLearner)
    learner.fit(table)
    assert learner.rows == len(table)  # one answering model besides the partner
    assert len(pair_features("x", None)) == FEATURES
    path = save_learner(learner, tmp_path / "judge")
    loaded = read_artifact(path).learner
    assert isinstance(loaded, AnswerJudgeLearner) and loaded.partner == "gpt-4-1106-preview"
    assert loaded.scorer is not None and learner.scorer is not None
    np.testing.assert_allclose(loaded.scorer.weights, learner.scorer.weights)
    text, partner = str(table.answers[1, 0]), str(table.answers[1, 1])  # type: ignore[index]
    assert loaded.scorer.score_text(text, partner) == \
        pytest.approx(learner.scorer.score_text(text, partner))


def test_answer_judge_needs_answers_and_scores_no_prompts() -> None:
    table = load_table(GSM8K, "routellm")
    bare = OutcomeTable(table.prompts, table.models, table.quality)
    with pytest.raises(DataError, match="learns from answers"):
        AnswerJudgeLearner({}).fit(bare)
    with pytest.raises(DataError, match="not in the data"):
        AnswerJudgeLearner({"models": ["nope"]}).fit(table)
    with pytest.raises(ConfigError, match="unknown options"):
        AnswerJudgeLearner({"k": 3})
    fitted = AnswerJudgeLearner({"models": [WEAK]})
    fitted.fit(table)
    with pytest.raises(DataError, match="scores answers, not prompts"):
        fitted.predict_quality(["hi"])


def test_replay_normaliser_option_changes_what_agrees() -> None:
    n = 40
    right = np.arange(n) % 4 != 0
    answers = np.empty((n, 3), dtype=object)
    for i in range(n):  # the same letter written two ways: only 'choice' reads both
        answers[i] = ["(A)", "The answer is A", "A"] if right[i] else ["(B)", "C", "A"]
    quality = np.column_stack([right, right, np.ones(n)]).astype(np.float64)
    table = OutcomeTable(tuple(f"q{i}" for i in range(n)), ("a", "b", "s"), quality,
                         np.tile([0.001, 0.002, 0.02], (n, 1)), ("t",) * n, "toy", (),
                         answers)
    plan = kfold_plan(table, 2)
    config = load_config()
    text = evaluate(lab_router("cascade-agreement", {"normaliser": "text"}, config), plan,
                    two_model=False)
    choice = evaluate(lab_router("cascade-agreement", {"normaliser": "choice"}, config), plan,
                      two_model=False)
    assert choice["cascade_at_95%"]["cost"] < text["cascade_at_95%"]["cost"]
    with pytest.raises(ConfigError, match="unknown answer normaliser"):
        lab_router("cascade-agreement", {"normaliser": "roman"}, config)
