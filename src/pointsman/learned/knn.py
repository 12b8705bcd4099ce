"""k-nearest-neighbour router: each model's quality on the most similar known prompts.

Prompts are embedded (unit vectors), so cosine similarity is one matrix product with the
stored training vectors. For each query the ``k`` most similar training prompts vote with
weights ``uniform``, ``similarity`` (max(cos, 0)) or ``softmax`` (exp(cos / temperature));
per model, only neighbours whose outcome is known count. ``prior_strength`` pseudo-votes
at the model's mean quality keep sparse neighbourhoods from swinging to 0 or 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.artifacts import Arrays, require
from pointsman.learned.base import EmbeddingLearner
from pointsman.learning import FloatArray, OutcomeTable

WEIGHTINGS = ("uniform", "similarity", "softmax")
_CHUNK = 512


class KnnLearner(EmbeddingLearner):
    name = "knn"
    known_options = frozenset({"k", "weighting", "temperature", "prior_strength"})

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.k = self.opts.integer("k", 100)
        self.weighting = self.opts.choice("weighting", "softmax", WEIGHTINGS)
        self.temperature = self.opts.number("temperature", 0.05, low=1e-4)
        self.prior_strength = self.opts.number("prior_strength", 2.0, low=0.0)
        self.vectors_: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self.quality: FloatArray = np.zeros((0, 0))

    def _fit(self, vectors: FloatArray, table: OutcomeTable) -> None:
        self.vectors_ = vectors.astype(np.float32)
        self.quality = table.quality.astype(np.float64)

    def _predict(self, vectors: FloatArray, prompts: Sequence[str]) -> FloatArray:
        query = vectors.astype(np.float32)
        parts = [self._chunk(query[i:i + _CHUNK]) for i in range(0, len(query), _CHUNK)]
        return np.concatenate(parts)

    def _chunk(self, query: npt.NDArray[np.float32]) -> FloatArray:
        sims = query @ self.vectors_.T
        k = min(self.k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, idx, axis=1).astype(np.float64)
        weights = self._weights(top)                       # q × k
        values = self.quality[idx]                         # q × k × m
        known = ~np.isnan(values)
        w = weights[:, :, None] * known
        total = (w * np.where(known, values, 0.0)).sum(axis=1)
        mass = w.sum(axis=1)
        prior = self.prior[None, :] * self.prior_strength
        return np.asarray((total + prior) / (mass + self.prior_strength + 1e-12))

    def _weights(self, top: FloatArray) -> FloatArray:
        if self.weighting == "uniform":
            return np.ones_like(top)
        if self.weighting == "similarity":
            return np.maximum(top, 0.0)
        scaled = (top - top.max(axis=1, keepdims=True)) / self.temperature
        weights = np.exp(scaled)
        # Normalise to k votes in all, so prior_strength means the same for any weighting.
        return np.asarray(weights / weights.sum(axis=1, keepdims=True) * top.shape[1])

    def _export(self) -> tuple[dict[str, Any], Arrays]:
        return {}, {"vectors": self.vectors_.astype(np.float16), "quality": self.quality}

    def _import(self, state: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        vectors = require(arrays, "vectors", 2).astype(np.float32)
        quality = require(arrays, "quality", 2)
        if quality.shape != (len(vectors), len(self.models)):
            raise ValueError(f"quality has shape {quality.shape}, expected "
                             f"{(len(vectors), len(self.models))}")
        self.vectors_ = vectors
        self.quality = quality
