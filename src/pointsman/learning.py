"""Shared shapes for outcome data and trainable routers (the eval lab and learned routers).

An :class:`OutcomeTable` is what every benchmark format loads into: one row per prompt,
one column per model, with the observed quality (``nan`` where unknown) and, when the
data has it, the cost of that call in US dollars (``nan`` where unknown).

A :class:`Learner` is a router that learns from outcomes. It predicts, for each prompt,
the quality of each model of the table it was fitted on. Two-model routers (RouteLLM
style) are learners over two columns: the routing score is the predicted quality gap
(strong minus weak), or the strong model's win probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class OutcomeTable:
    """Per-prompt outcomes of several models. ``quality`` and ``cost`` are n × m."""

    prompts: tuple[str, ...]
    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray | None = None
    groups: tuple[str, ...] = ()
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: n × m strings: each model's answer text ("" where unknown), when the data has it
    answers: npt.NDArray[np.object_] | None = None

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if self.quality.shape != (n, m):
            raise ValueError(f"quality has shape {self.quality.shape}, expected {(n, m)}")
        if self.cost is not None and self.cost.shape != (n, m):
            raise ValueError(f"cost has shape {self.cost.shape}, expected {(n, m)}")
        if self.groups and len(self.groups) != n:
            raise ValueError(f"groups has {len(self.groups)} entries, expected {n}")
        if self.answers is not None and self.answers.shape != (n, m):
            raise ValueError(f"answers has shape {self.answers.shape}, expected {(n, m)}")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Sequence[int] | npt.NDArray[np.int_]) -> OutcomeTable:
        idx = np.asarray(index, dtype=np.int64)
        return OutcomeTable(
            prompts=tuple(self.prompts[i] for i in idx),
            models=self.models,
            quality=self.quality[idx],
            cost=None if self.cost is None else self.cost[idx],
            groups=tuple(self.groups[i] for i in idx) if self.groups else (),
            source=self.source,
            notes=self.notes,
            answers=None if self.answers is None else self.answers[idx],
        )

    def column(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise KeyError(f"model {model!r} not in table; models: {list(self.models)}") from None


@runtime_checkable
class Learner(Protocol):
    """A router that learns each model's quality from outcomes."""

    name: str

    def fit(self, table: OutcomeTable) -> None: ...

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        """An n × m array: predicted quality of each fitted model for each prompt."""
        ...


def strong_win_score(quality: FloatArray, strong: int, weak: int) -> FloatArray:
    """The two-model routing score in [0, 1] from predicted qualities (n × m).

    ``(q_strong - q_weak + 1) / 2``: 1 when only the strong model is predicted right, 0
    when only the weak one is, 0.5 when they are predicted equal. The evaluation lab
    sweeps a threshold over it and the gateway's threshold mode compares it with
    ``router.threshold`` (as ``complexity / 100``), so calibration carries over exactly.
    """
    gap = np.nan_to_num(quality[:, strong] - quality[:, weak], nan=0.0)
    return np.clip((gap + 1.0) / 2.0, 0.0, 1.0)
