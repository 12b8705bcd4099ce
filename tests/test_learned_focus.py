"""Embeddings that see the question: shared-prefix stripping fitted, stored and served."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointsman.artifacts import read_artifact, save_learner
from pointsman.learned.focus import TextFocus, last_user_text, shared_prefixes
from pointsman.learned.knn import KnnLearner
from pointsman.learned.scorer import LearnedScorer
from pointsman.learning import OutcomeTable
from pointsman.types import Message, RouteRequest

SHOTS = ("Answer with one letter.\nQ: What colour is the sky?\nA) red\nB) blue\nAnswer: B\n"
         "Q: How many legs does a spider have?\nA) six\nB) eight\nAnswer: B\n")
QUESTIONS = [f"Q: What is {i} plus {i + 3}?\nA) {2 * i + 3}\nB) {2 * i}\nAnswer:"
             for i in range(30)]
HARD = [f"Q: Prove that the sequence number {i} converges uniformly.\nA) yes\nB) no\nAnswer:"
        for i in range(30)]


def few_shot_table() -> OutcomeTable:
    prompts = [SHOTS + q for q in QUESTIONS + HARD]
    quality = [[1.0, 1.0]] * len(QUESTIONS) + [[0.0, 1.0]] * len(HARD)
    return OutcomeTable(tuple(prompts), ("weak", "strong"), np.array(quality))


def test_the_few_shot_prefix_is_found_cut_at_a_boundary_and_stripped() -> None:
    prompts = few_shot_table().prompts
    found = shared_prefixes(prompts)
    assert found == [SHOTS + "Q: "]  # not "... Q: What is ": that is half the questions
    focus = TextFocus.fit(prompts)
    assert focus.one(prompts[0]) == QUESTIONS[0].removeprefix("Q: ")
    assert focus.one("an unseen prompt") == "an unseen prompt"
    assert focus.one(SHOTS) == SHOTS  # never strips a prompt down to nothing


def test_rare_or_short_prefixes_are_kept() -> None:
    prompts = [f"Which of the following is true about item {i}?" for i in range(40)]
    assert shared_prefixes(prompts) == []  # shorter than 64 characters
    rare = [SHOTS + "one question", SHOTS + "another question", "unrelated"]
    assert shared_prefixes(rare) == []  # two prompts are not a template


def test_long_text_keeps_its_head_and_tail() -> None:
    focus = TextFocus((), head=10, tail=5)
    text = "HEAD-PART-" + "x" * 100 + "TAIL!"
    assert focus.one(text) == "HEAD-PART- … TAIL!"
    assert focus.one("short") == "short"


def test_state_round_trip_and_old_artifacts() -> None:
    focus = TextFocus(("prefix one ", "p2 "), head=100, tail=50)
    assert TextFocus.from_state(focus.to_state()) == focus
    assert not TextFocus.from_state(None).active
    assert "2 shared prefixes" in focus.describe()


def test_the_last_user_turn_is_what_a_learned_router_embeds() -> None:
    request = RouteRequest((Message("system", "You are terse."), Message("user", "first"),
                            Message("assistant", "ok"), Message("user", "the question")))
    assert last_user_text(request) == "the question"
    assert last_user_text(RouteRequest((Message("system", "only"),))) == "only"


def test_knn_embeds_the_question_and_the_artifact_records_the_prefix(tmp_path: Path) -> None:
    table = few_shot_table()
    full = KnnLearner({"encoder": "hashing", "k": 5, "focus": "full"})
    focused = KnnLearner({"encoder": "hashing", "k": 5})
    for learner in (full, focused):
        learner.fit(table)
    vectors = focused.vectors(table.prompts[:2])
    assert float(vectors[0] @ vectors[1]) < float(np.dot(*full.vectors(table.prompts[:2])))
    path = save_learner(focused, tmp_path / "knn.npz")
    loaded = read_artifact(path).learner
    assert isinstance(loaded, KnnLearner)
    assert loaded.text_focus == focused.text_focus and loaded.text_focus.prefixes
    np.testing.assert_allclose(loaded.predict_quality(table.prompts[:5]),
                               focused.predict_quality(table.prompts[:5]), atol=1e-3)
    scorer = LearnedScorer(loaded, loaded.models, name="knn", prior=loaded.prior)
    served = RouteRequest((Message("system", "be brief"), Message("user", table.prompts[40])))
    assert scorer.score(served).score > 50.0  # the hard question, seen past the template
