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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.errors import ArtifactError, ConfigError, DataError
from pointsman.learned import answers as an
from pointsman.learned.options import Options
from pointsman.learning import FloatArray, OutcomeTable

KINDS = ("choice", "number", "json", "text")
LETTERS = ("A", "B", "C", "D", "E")
FEATURES = len(KINDS) + 1 + len(LETTERS) + 4 + 3  # the length of pair_features


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


class AnswerJudgeLearner:
    """``pointsman train --router answer-judge``: an :class:`AnswerScorer` fitted on every
    answer of the data (one row per prompt and model: its features, right when its quality
    is at least 0.5), stored as an artifact that the gateway cascade's judge ``learned``
    loads. Options: ``models`` (answering models to learn from; default all), ``partner``
    (a model whose answer is every row's partner: the agreement features; the gateway then
    asks that judge's ``second_model`` for it), ``c`` (inverse regularisation).

    It scores answers, not prompts: as a prompt router it has nothing to say."""

    name = "answer-judge"

    def __init__(self, options: Mapping[str, Any]) -> None:
        opts = Options("router answer-judge", options, {"models", "partner", "c"})
        models = options.get("models") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError("router answer-judge: option 'models' must be a list of names")
        self.options: dict[str, Any] = dict(options)
        self.models: tuple[str, ...] = tuple(models)
        self.partner = opts.optional_string("partner")
        self.c = opts.number("c", 1.0, low=1e-6)
        self.scorer: AnswerScorer | None = None
        self.rows = 0

    def fit(self, table: OutcomeTable) -> None:
        if table.answers is None:
            raise DataError("router answer-judge learns from answers; this data has none "
                            "(RouterBench '<model>|model_response' or RouteLLM "
                            "'<model>_response' columns)")
        texts, partners, right = self._rows(table, table.answers)
        if not texts:
            raise DataError("router answer-judge: no answer with a known quality to learn from")
        self.scorer = AnswerScorer.fit(
            feature_matrix(texts, partners if self.partner else None), np.asarray(right),
            self.c)
        self.rows = len(texts)

    def _rows(self, table: OutcomeTable, answers: npt.NDArray[np.object_]
              ) -> tuple[list[str], list[str], list[float]]:
        for name in [*self.models, *([self.partner] if self.partner else [])]:
            if name not in table.models:
                raise DataError(f"router answer-judge: model {name!r} is not in the data; "
                                f"it has {list(table.models)}")
        p = table.models.index(self.partner) if self.partner else None
        columns = [table.models.index(m) for m in self.models] or [
            j for j in range(len(table.models)) if j != p]
        texts, partners, right = [], [], []
        for i in range(len(table)):
            for j in columns:
                text, q = str(answers[i, j] or ""), float(table.quality[i, j])
                if text and not np.isnan(q):
                    texts.append(text)
                    partners.append("" if p is None else str(answers[i, p] or ""))
                    right.append(q)
        return texts, partners, right

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        raise DataError("router answer-judge scores answers, not prompts: serve its artifact "
                        "as the gateway cascade's judge 'learned', or replay it offline "
                        "with the router cascade-learned")

    def export_state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        if self.scorer is None:
            raise ArtifactError("router answer-judge was not fitted")
        return ({"bias": self.scorer.bias, "rows": self.rows, "partner": self.partner},
                {"weights": self.scorer.weights})

    def import_state(self, state: Mapping[str, Any],
                     arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        from pointsman.artifacts import require

        weights = require(arrays, "weights", 1)
        if len(weights) != FEATURES:
            raise ValueError(f"{len(weights)} weights, expected {FEATURES}")
        self.scorer = AnswerScorer(weights, float(state["bias"]))
        self.rows = int(state.get("rows", 0))
