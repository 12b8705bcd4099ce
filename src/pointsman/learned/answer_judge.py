"""The learned answer judge: the probability that a cheap model's answer is right, from the
answer itself (and, when a second cheap model answered, from whether the two agree).

Why answers: on benchmark data the prompt carries little per-question signal beyond its
task, while the answer carries a lot (two cheap models that agree are right far more
often than either alone; a GSM8K answer whose ``<<a*b=c>>`` arithmetic does not check, or
that hedges, is usually wrong). The features are cheap, text-only and the same offline
(:mod:`pointsman.evaluation.cascade_replay`) and in the gateway:

* the normalised answer's kind (choice letter, number, JSON, text, none) and, for a
  choice, which letter (a per-model confusion: some models over-pick a letter);
* log length, hedging phrases, the share of arithmetic annotations that check, a GSM8K
  ``####`` final-answer line;
* with a partner answer: agreement of the normalised answers, and whether the partner
  gave a readable answer at all.

A :class:`AnswerScorer` is a logistic model over these features (fitted with
scikit-learn, applied with numpy: no scikit-learn object is kept or pickled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointsman.learned import answers as an
from pointsman.learning import FloatArray

KINDS = ("choice", "number", "json", "text")
LETTERS = ("A", "B", "C", "D", "E")


def answer_features(text: str) -> list[float]:
    """Features of one answer (see the module docstring)."""
    norm = an.auto(text)
    kind = norm.split(":", 1)[0] if norm else ""
    letter = norm.split(":", 1)[1] if norm and kind == "choice" else ""
    return [*(float(kind == k) for k in KINDS), float(norm is None),
            *(float(letter == x) for x in LETTERS),
            float(np.log1p(len(text))) / 8.0, min(an.hedging(text), 3) / 3.0,
            an.arithmetic_ok(text), float("####" in text)]


def pair_features(text: str, partner: str | None) -> list[float]:
    """An answer's features plus its agreement with ``partner`` (zeros without one)."""
    base = answer_features(text)
    if partner is None:
        return [*base, 0.0, 0.0, 0.0]
    mine, theirs = an.auto(text), an.auto(partner)
    return [*base, 1.0, float(an.agree(mine, theirs)), float(theirs is None)]


def feature_matrix(texts: Sequence[str], partners: Sequence[str] | None = None) -> FloatArray:
    rows = [pair_features(t, None if partners is None else partners[i])
            for i, t in enumerate(texts)]
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class AnswerScorer:
    """``P(answer right) = σ(w·x + b)`` over :func:`pair_features`."""

    weights: FloatArray
    bias: float

    @classmethod
    def fit(cls, features: FloatArray, right: FloatArray, c: float = 1.0) -> AnswerScorer:
        """Fit on answers labelled right (quality ≥ 0.5) or wrong; a single class gives a
        constant scorer at that class's rate."""
        from sklearn.linear_model import LogisticRegression

        labels = (np.asarray(right) >= 0.5).astype(np.int64)
        if labels.min() == labels.max():
            rate = float(np.clip(labels.mean(), 0.02, 0.98))
            return cls(np.zeros(features.shape[1]), float(np.log(rate / (1 - rate))))
        model = LogisticRegression(C=c, max_iter=500)
        model.fit(features, labels)
        return cls(np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0]))

    def score(self, features: FloatArray) -> FloatArray:
        z = features @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def score_text(self, text: str, partner: str | None = None) -> float:
        return float(self.score(np.asarray([pair_features(text, partner)]))[0])
