"""Routers in the evaluation lab, all found by name.

:func:`lab_router` resolves a name, in this order:

1. the baselines ``random`` (seeded: option ``seed``, default 0), ``always-weak`` and
   ``always-strong``;
2. a path to a trained artifact (a name ending in ``.npz`` or containing ``/``), loaded
   with :func:`pointsman.artifacts.load_learner`; it is already fitted and never refitted;
3. a registered learner (``learners.get(name)(options)``): a fresh one is fitted on the
   training part of every fold; its two-model score is
   :func:`~pointsman.learning.strong_win_score` of its predicted qualities;
4. a registered scorer (``create_scorer(config, name, options)``): its two-model score is
   ``signal.score / 100``, the scale of the gateway's threshold mode.

A router's :class:`Prediction` for a test table is one of: hard ``choice`` (one column
per prompt: one operating point), a scalar ``score`` (higher = stronger model), or
predicted ``quality`` per model with the per-model ``cost`` it expects to pay (averaged
over its training data). The lab turns any of them into curves; see
:mod:`pointsman.evaluation.lab`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pointsman.config import PointsmanConfig
from pointsman.errors import ArtifactError, ConfigError, DataError
from pointsman.evaluation.pareto import column_means
from pointsman.learning import FloatArray, Learner, OutcomeTable, strong_win_score
from pointsman.registry import create_scorer, learners, scorers
from pointsman.suggest import did_you_mean
from pointsman.types import RouteRequest

BASELINES: tuple[str, ...] = ("random", "always-weak", "always-strong")
CASCADES: tuple[str, ...] = ("cascade-agreement", "cascade-learned")  # replay answers


@dataclass(frozen=True)
class Roles:
    """Which columns are the weak and strong model (two-model data), fixed per run."""

    weak: int
    strong: int


@dataclass(frozen=True)
class Prediction:
    choice: npt.NDArray[np.int64] | None = None
    score: FloatArray | None = None
    quality: FloatArray | None = None
    cost: FloatArray | None = None
    replay: Any = None  # a cascade's operating points (cascade_replay.Replay)


class LabRouter(Protocol):
    name: str
    trainable: bool

    def fit(self, train: OutcomeTable) -> None: ...

    def predict(self, test: OutcomeTable, roles: Roles | None) -> Prediction: ...


class RandomRouter:
    """Uniform random scores from a seeded generator (the random baseline, simulated)."""

    trainable = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - {"seed"}
        if unknown:
            raise ConfigError(f"router random: unknown options {sorted(unknown)}; known: seed")
        self.name = "random"
        self._rng = np.random.default_rng(int(options.get("seed", 0)))

    def fit(self, train: OutcomeTable) -> None:
        return None

    def predict(self, test: OutcomeTable, roles: Roles | None) -> Prediction:
        return Prediction(score=self._rng.random(len(test)))


class FixedRouter:
    """Always the weak (cheapest) or the strong (best) model: one operating point."""

    trainable = True  # many-model: "cheapest"/"best" are read from the training data

    def __init__(self, strong: bool) -> None:
        self.name = "always-strong" if strong else "always-weak"
        self.strong = strong
        self._column = 0

    def fit(self, train: OutcomeTable) -> None:
        quality = np.nan_to_num(column_means(train.quality), nan=-np.inf)
        if self.strong:
            self._column = int(np.argmax(quality))
        elif train.cost is not None:
            cost = np.nan_to_num(column_means(train.cost), nan=np.inf)
            self._column = int(np.lexsort((-quality, cost))[0])
        else:
            self._column = int(np.argmin(quality))

    def predict(self, test: OutcomeTable, roles: Roles | None) -> Prediction:
        column = self._column
        if roles is not None:
            column = roles.strong if self.strong else roles.weak
        return Prediction(choice=np.full(len(test), column, dtype=np.int64))


class ScorerRouter:
    """A registered complexity scorer: score = ``signal.score / 100`` (gateway scale)."""

    trainable = False

    def __init__(self, name: str, config: PointsmanConfig, options: Mapping[str, Any]) -> None:
        self.name = name
        self.scorer = create_scorer(config, name, options)

    def fit(self, train: OutcomeTable) -> None:
        return None

    def predict(self, test: OutcomeTable, roles: Roles | None) -> Prediction:
        return Prediction(score=self.scores(test.prompts))

    def scores(self, prompts: Sequence[str]) -> FloatArray:
        out = np.empty(len(prompts))
        for i, prompt in enumerate(prompts):
            out[i] = self.scorer.score(RouteRequest.from_prompt(prompt)).score / 100.0
        return out


class LearnerRouter:
    """A learner: refitted from its factory on each training set, or a loaded artifact."""

    def __init__(self, name: str, make: Callable[[], Learner] | None,
                 fitted: Learner | None = None) -> None:
        self.name = name
        self._make = make
        self.trainable = make is not None
        self.learner = fitted
        self._models: tuple[str, ...] = tuple(getattr(fitted, "models", ()) or ())
        self._cost: FloatArray | None = _artifact_cost(fitted)

    def fit(self, train: OutcomeTable) -> None:
        if self._make is None:
            return
        self.learner = self._make()
        self.learner.fit(train)
        self._models = train.models
        self._cost = None if train.cost is None else column_means(train.cost)

    def predict(self, test: OutcomeTable, roles: Roles | None) -> Prediction:
        if self.learner is None:
            raise DataError(f"router {self.name} was not fitted")
        raw = np.asarray(self.learner.predict_quality(list(test.prompts)), dtype=np.float64)
        quality = self._align(raw, test.models)
        if roles is not None:
            return Prediction(score=strong_win_score(quality, roles.strong, roles.weak),
                              quality=quality)
        return Prediction(quality=quality, cost=self._cost_for(test))

    def _align(self, raw: FloatArray, models: tuple[str, ...]) -> FloatArray:
        fitted = self._models or models
        if raw.ndim != 2 or raw.shape[1] != len(fitted):
            raise ArtifactError(f"router {self.name} predicted shape {raw.shape}, expected "
                                f"(n, {len(fitted)})")
        missing = [m for m in models if m not in fitted]
        if missing:
            raise DataError(f"router {self.name} was fitted on models {list(fitted)}; the "
                            f"data also has {missing}")
        return raw[:, [fitted.index(m) for m in models]]

    def _cost_for(self, test: OutcomeTable) -> FloatArray:
        if self._cost is not None and self._models:
            by_model = dict(zip(self._models, self._cost, strict=True))
            cost = np.array([by_model.get(m, np.nan) for m in test.models])
            if not np.isnan(cost).all():
                return cost
        if test.cost is None:
            raise DataError(f"router {self.name}: the data has no costs")
        raise DataError(f"router {self.name} knows no per-model cost (an artifact without "
                        "mean costs); evaluate it with --folds so it is fitted here")


def _artifact_cost(learner: Learner | None) -> FloatArray | None:
    cost = getattr(learner, "mean_cost", None)
    return None if cost is None else np.asarray(cost, dtype=np.float64)


def is_artifact_path(name: str) -> bool:
    return name.endswith(".npz") or "/" in name


def lab_router(name: str, options: Mapping[str, Any], config: PointsmanConfig) -> LabRouter:
    """The router called ``name`` (see the module docstring for the lookup order)."""
    if name == "random":
        return RandomRouter(options)
    if name in ("always-weak", "always-strong"):
        if options:
            raise ConfigError(f"router {name} takes no options, got {sorted(options)}")
        return FixedRouter(strong=name == "always-strong")
    if is_artifact_path(name):
        return LearnerRouter(name, None, _load_artifact(name))
    if name in CASCADES:
        from pointsman.evaluation.cascade_replay import CascadeRouter

        return CascadeRouter(name.removeprefix("cascade-"), options)
    if name in learners:
        factory = learners.get(name)
        factory(options)  # validate the options once, before any fold runs
        return LearnerRouter(name, lambda: factory(options))
    if name in scorers:
        return ScorerRouter(name, config, options)
    known = list(dict.fromkeys([*BASELINES, *CASCADES, *learners.names(), *scorers.names()]))
    raise ConfigError(f"unknown router {name!r}{did_you_mean(name, known)}; known: "
                      f"{', '.join(known)} (or the path of a trained .npz artifact)")


def _load_artifact(path: str) -> Learner:
    try:
        from pointsman.artifacts import load_learner
    except ImportError:
        raise ArtifactError(f"{path}: trained-router artifacts are not supported by this "
                            "build (pointsman.artifacts is missing)") from None
    return load_learner(path)


def router_names() -> list[str]:
    """Every router name the lab accepts (artifact paths aside)."""
    return [*BASELINES, *CASCADES, *learners.names(), *scorers.names()]
