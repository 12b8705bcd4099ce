"""Logistic-regression router: per model, P(the model answers well | prompt).

Features are the prompt embedding plus the standardised cheap features of
:mod:`pointsman.learned.features`. One L2-regularised logistic regression (scikit-learn,
``lbfgs``) is fitted per model on the prompts whose outcome for it is known; a quality in
[0, 1] counts as a success when it is at least 0.5. A model whose known outcomes are all
one class predicts its (smoothed) success rate. Prediction is a sigmoid of one matrix
product, so the artifact stores only the coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.artifacts import Arrays, require
from pointsman.learned.base import EmbeddingLearner
from pointsman.learned.features import Standardiser, cheap_features
from pointsman.learning import FloatArray, OutcomeTable


class LogisticLearner(EmbeddingLearner):
    name = "logreg"
    known_options = frozenset({"C", "cheap_features", "max_iter"})

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.c = self.opts.number("C", 0.5, low=1e-6)
        self.use_cheap = self.opts.choice("cheap_features", "on", ("on", "off")) == "on"
        self.max_iter = self.opts.integer("max_iter", 300)
        self.scaler = Standardiser()
        self.coef: FloatArray = np.zeros((0, 0))
        self.intercept: FloatArray = np.zeros(0)

    def design(self, vectors: FloatArray, texts: Sequence[str], fit: bool = False) -> FloatArray:
        if not self.use_cheap:
            return vectors
        raw = cheap_features(texts)
        cheap = self.scaler.fit(raw) if fit else self.scaler.apply(raw)
        return np.hstack([vectors, cheap])

    def _fit(self, vectors: FloatArray, table: OutcomeTable) -> None:
        x = self.design(vectors, table.prompts, fit=True)
        self.coef = np.zeros((len(table.models), x.shape[1]))
        self.intercept = np.zeros(len(table.models))
        for j in range(len(table.models)):
            self.coef[j], self.intercept[j] = self._fit_column(x, table.quality[:, j])

    def _fit_column(self, x: FloatArray, column: FloatArray) -> tuple[FloatArray, float]:
        known = ~np.isnan(column)
        labels = (column[known] >= 0.5).astype(int)
        if len(np.unique(labels)) < 2:
            rate = (labels.sum() + 1.0) / (len(labels) + 2.0)
            return np.zeros(x.shape[1]), float(np.log(rate / (1.0 - rate)))
        from sklearn.linear_model import LogisticRegression  # only when training

        model = LogisticRegression(C=self.c, max_iter=self.max_iter)
        model.fit(x[known], labels)
        return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])

    def _predict(self, vectors: FloatArray, prompts: Sequence[str]) -> FloatArray:
        x = self.design(vectors, prompts)
        return np.asarray(1.0 / (1.0 + np.exp(-(x @ self.coef.T + self.intercept))))

    def _export(self) -> tuple[dict[str, Any], Arrays]:
        arrays: Arrays = {"coef": self.coef, "intercept": self.intercept}
        if self.use_cheap and self.scaler.mean is not None and self.scaler.std is not None:
            arrays |= {"feature_mean": self.scaler.mean, "feature_std": self.scaler.std}
        return {}, arrays

    def _import(self, state: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self.coef = require(arrays, "coef", 2)
        self.intercept = require(arrays, "intercept", 1)
        if self.coef.shape[0] != len(self.models) or self.intercept.shape != (len(self.models),):
            raise ValueError("coefficients do not match the number of models")
        if self.use_cheap:
            self.scaler = Standardiser(require(arrays, "feature_mean", 1),
                                       require(arrays, "feature_std", 1))
