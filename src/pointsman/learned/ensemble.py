"""An ensemble of learned routers: the mean of its members' predicted qualities.

``members`` (default ``knn,logreg,mf``) are fitted on the same table; ``encoder`` is
passed to every member, ``member_options`` gives per-member options
(``{"knn": {"k": 100}}``). Averaging learners with different biases (local neighbours, a
linear model, a shared low-rank projection) is steadier than any one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.artifacts import Arrays
from pointsman.errors import ConfigError
from pointsman.learned.base import DEFAULT_ENCODER, DEFAULT_FOCUS, EmbeddingLearner
from pointsman.learned.classifier import LogisticLearner
from pointsman.learned.focus import MODES, TextFocus
from pointsman.learned.knn import KnnLearner
from pointsman.learned.mf import MatrixFactorisationLearner
from pointsman.learned.options import Options
from pointsman.learning import FloatArray, OutcomeTable

MEMBERS: dict[str, type[EmbeddingLearner]] = {
    "knn": KnnLearner, "logreg": LogisticLearner, "mf": MatrixFactorisationLearner}


class EnsembleLearner:
    name = "ensemble"

    def __init__(self, options: Mapping[str, Any]) -> None:
        opts = Options("router ensemble", options, {"members", "encoder", "focus",
                                                      "member_options"})
        self.options: dict[str, Any] = dict(options)
        names = opts.string("members", "knn,logreg,mf")
        self.member_names = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in self.member_names if n not in MEMBERS]
        if unknown or not self.member_names:
            raise ConfigError(f"router ensemble: option 'members' must list some of "
                              f"{sorted(MEMBERS)}, got {names!r}")
        self.encoder = opts.string("encoder", DEFAULT_ENCODER)
        per = options.get("member_options") or {}
        if not isinstance(per, Mapping):
            raise ConfigError("router ensemble: option 'member_options' must be a mapping")
        shared = {"encoder": self.encoder,
                  "focus": opts.choice("focus", DEFAULT_FOCUS, MODES)}
        self.members = [MEMBERS[n]({**shared, **dict(per.get(n) or {})})
                        for n in self.member_names]

    @property
    def models(self) -> tuple[str, ...]:
        return self.members[0].models

    @property
    def text_focus(self) -> TextFocus:
        return self.members[0].text_focus

    @property
    def prior(self) -> FloatArray:
        return self.members[0].prior

    @property
    def mean_cost(self) -> FloatArray:
        return self.members[0].mean_cost

    def fit(self, table: OutcomeTable) -> None:
        for member in self.members:
            member.fit(table)

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        return np.asarray(np.mean([m.predict_quality(prompts) for m in self.members], axis=0))

    def export_state(self) -> tuple[dict[str, Any], Arrays]:
        states: list[dict[str, Any]] = []
        arrays: Arrays = {}
        for i, member in enumerate(self.members):
            state, member_arrays = member.export_state()
            states.append(state)
            arrays |= {f"{i}.{key}": value for key, value in member_arrays.items()}
        return {"members": states}, arrays

    def import_state(self, state: Mapping[str, Any],
                     arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        states = state["members"]
        if not isinstance(states, list) or len(states) != len(self.members):
            raise ValueError(f"expected {len(self.members)} member states")
        for i, (member, member_state) in enumerate(zip(self.members, states, strict=True)):
            prefix = f"{i}."
            member.import_state(member_state, {k[len(prefix):]: v for k, v in arrays.items()
                                               if k.startswith(prefix)})
