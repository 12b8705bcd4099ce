"""Matrix-factorisation router, after RouteLLM's ``mf`` router, for any number of models.

RouteLLM scores a (model, prompt) pair as ``w2ᵀ(v_m ⊙ (W1·e + b))``: a learned model vector
times a learned projection of the prompt embedding. Here each model ``j`` has a vector
``u_j`` (rank ``r``) and a bias ``b_j``; a prompt's features ``x`` (embedding plus cheap
features) are projected by a shared ``P`` (r × d), and

    P(model j answers prompt i well) = sigmoid(b_j + u_jᵀ · P x_i).

So it is a low-rank, multi-output logistic regression: models share the projection, which
lets sparse columns borrow strength from dense ones. It is trained with numpy only:
full-batch Adam on the binary cross-entropy of the known cells (a quality in [0, 1] is a
soft label; unknown cells are skipped) plus an L2 penalty, from a fixed seed.
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


class MatrixFactorisationLearner(EmbeddingLearner):
    name = "mf"
    known_options = frozenset({"rank", "epochs", "learning_rate", "l2", "seed"})

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.rank = self.opts.integer("rank", 16)
        self.epochs = self.opts.integer("epochs", 300)
        self.lr = self.opts.number("learning_rate", 0.01, low=1e-6)
        self.l2 = self.opts.number("l2", 1e-3, low=0.0)
        self.seed = self.opts.integer("seed", 0, low=0)
        self.scaler = Standardiser()
        self.proj: FloatArray = np.zeros((0, 0))
        self.model_vecs: FloatArray = np.zeros((0, 0))
        self.bias: FloatArray = np.zeros(0)

    def _design(self, vectors: FloatArray, prompts: Sequence[str], fit: bool) -> FloatArray:
        raw = cheap_features(prompts)
        cheap = self.scaler.fit(raw) if fit else self.scaler.apply(raw)
        return np.hstack([vectors, cheap * 0.1])

    def _fit(self, vectors: FloatArray, table: OutcomeTable) -> None:
        x = self._design(vectors, table.prompts, fit=True)
        known = ~np.isnan(table.quality)
        target = np.where(known, table.quality, 0.0)
        rng = np.random.default_rng(self.seed)
        m = len(table.models)
        params = [rng.normal(0, 0.05, (self.rank, x.shape[1])),
                  rng.normal(0, 0.05, (m, self.rank)),
                  np.log((self.prior + 0.01) / (1.01 - self.prior))]
        adam = _Adam(params, self.lr)
        for _ in range(self.epochs):
            adam.step(self._gradients(params, x, target, known))
        self.proj, self.model_vecs, self.bias = params

    def _gradients(self, params: list[FloatArray], x: FloatArray, target: FloatArray,
                   known: npt.NDArray[np.bool_]) -> list[FloatArray]:
        proj, vecs, bias = params
        z = x @ proj.T                                  # n × r
        prob = _sigmoid(z @ vecs.T + bias)              # n × m
        err = np.where(known, prob - target, 0.0) / max(int(known.sum()), 1)
        grad_vecs = err.T @ z + self.l2 * vecs
        grad_z = err @ vecs                             # n × r
        grad_proj = grad_z.T @ x + self.l2 * proj
        return [grad_proj, grad_vecs, err.sum(axis=0)]

    def _predict(self, vectors: FloatArray, prompts: Sequence[str]) -> FloatArray:
        x = self._design(vectors, prompts, fit=False)
        return _sigmoid((x @ self.proj.T) @ self.model_vecs.T + self.bias)

    def _export(self) -> tuple[dict[str, Any], Arrays]:
        assert self.scaler.mean is not None and self.scaler.std is not None
        return {}, {"proj": self.proj, "model_vecs": self.model_vecs, "bias": self.bias,
                    "feature_mean": self.scaler.mean, "feature_std": self.scaler.std}

    def _import(self, state: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self.proj = require(arrays, "proj", 2)
        self.model_vecs = require(arrays, "model_vecs", 2)
        self.bias = require(arrays, "bias", 1)
        if self.model_vecs.shape != (len(self.models), self.proj.shape[0]):
            raise ValueError("model vectors do not match the projection or the models")
        self.scaler = Standardiser(require(arrays, "feature_mean", 1),
                                   require(arrays, "feature_std", 1))


def _sigmoid(values: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(values, -30.0, 30.0))))


class _Adam:
    """Plain Adam over a list of arrays, updated in place."""

    def __init__(self, params: list[FloatArray], lr: float) -> None:
        self.params = params
        self.lr = lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[FloatArray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            m_hat = m / (1 - 0.9 ** self.t)
            v_hat = v / (1 - 0.999 ** self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)
