"""What every built-in learned router shares: options, the encoder, the fitted columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.artifacts import Arrays, require
from pointsman.errors import DataError
from pointsman.learned.features import encode
from pointsman.learned.focus import MODES, TextFocus
from pointsman.learned.options import Options
from pointsman.learning import FloatArray, OutcomeTable

DEFAULT_ENCODER = "minilm-static"
DEFAULT_FOCUS = "question"


def table_facts(name: str, table: OutcomeTable, focus_mode: str
                ) -> tuple[tuple[str, ...], FloatArray, FloatArray, TextFocus]:
    """What every learner keeps of its training table: the models, their mean quality
    (the prior) and cost, and the prompts' shared prefixes (``focus: question``)."""
    if len(table) == 0:
        raise DataError(f"router {name}: cannot fit on an empty outcome table")
    mean_cost = (np.full(len(table.models), np.nan) if table.cost is None
                 else column_means(table.cost, np.nan))
    focus = TextFocus.fit(table.prompts) if focus_mode == "question" else TextFocus()
    return table.models, column_means(table.quality, 0.5), mean_cost, focus


class EmbeddingLearner:
    """Base of the embedding learners: fits on an :class:`OutcomeTable`, stores to artifacts.

    Subclasses set ``name`` and ``known_options``, and implement ``_fit(vectors, table)``,
    ``_predict(vectors, prompts)``, ``_export()`` and ``_import(state, arrays)``.
    """

    name = "embedding"
    known_options: frozenset[str] = frozenset()

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.opts = Options(f"router {self.name}", options,
                            set(self.known_options) | {"encoder", "focus"})
        self.options: dict[str, Any] = dict(options)
        self.encoder = self.opts.string("encoder", DEFAULT_ENCODER)
        self.focus_mode = self.opts.choice("focus", DEFAULT_FOCUS, MODES)
        self.text_focus = TextFocus()
        self.models: tuple[str, ...] = ()
        self.prior: FloatArray = np.zeros(0)
        self.mean_cost: FloatArray = np.zeros(0)

    # -- Learner ------------------------------------------------------------------------
    def fit(self, table: OutcomeTable) -> None:
        self._learn_table(table)
        self._fit(self.vectors(table.prompts), table)

    def _learn_table(self, table: OutcomeTable) -> None:
        self.models, self.prior, self.mean_cost, self.text_focus = table_facts(
            self.name, table, self.focus_mode)

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        if not self.models:
            raise DataError(f"router {self.name} is not fitted")
        if not prompts:
            return np.zeros((0, len(self.models)))
        return self._predict(self.vectors(prompts), prompts)

    def vectors(self, prompts: Sequence[str]) -> FloatArray:
        return encode(self.encoder, self.text_focus.apply(prompts))

    # -- artifacts ----------------------------------------------------------------------
    def export_state(self) -> tuple[dict[str, Any], Arrays]:
        state, arrays = self._export()
        return ({"models": list(self.models), "focus": self.text_focus.to_state(), **state},
                {"prior": self.prior, "mean_cost": self.mean_cost, **arrays})

    def import_state(self, state: Mapping[str, Any],
                     arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        models = state["models"]
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ValueError("state.models must be a list of model names")
        self.models = tuple(models)
        self.prior = require(arrays, "prior", 1)
        self.mean_cost = require(arrays, "mean_cost", 1)
        if self.prior.shape != (len(models),) or self.mean_cost.shape != (len(models),):
            raise ValueError("prior/mean_cost do not match the number of models")
        self.text_focus = TextFocus.from_state(state.get("focus"))
        self._import(state, arrays)

    # -- for subclasses -----------------------------------------------------------------
    def _fit(self, vectors: FloatArray, table: OutcomeTable) -> None:
        raise NotImplementedError

    def _predict(self, vectors: FloatArray, prompts: Sequence[str]) -> FloatArray:
        raise NotImplementedError

    def _export(self) -> tuple[dict[str, Any], Arrays]:
        raise NotImplementedError

    def _import(self, state: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        raise NotImplementedError


def column_means(values: FloatArray, empty: float) -> FloatArray:
    known = ~np.isnan(values)
    counts = known.sum(axis=0)
    sums = np.where(known, values, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), empty)
