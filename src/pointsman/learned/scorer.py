"""A fitted learner (from an artifact) as a :class:`ComplexityScorer` for the router.

Two ways to use the predicted qualities:

* **two models** (default): the complexity is ``100 × strong_win_score(q, strong, weak)``,
  the very mapping the evaluation lab sweeps, so ``router.mode: threshold`` with
  ``router.threshold`` reproduces an operating point measured by ``pointsman eval``.
  ``strong`` / ``weak`` name artifact columns (default: the best and worst mean quality).
* **many models** (``models`` maps artifact columns to catalog models, with ``lambda`` or
  ``quality_target``): each mapped model's utility is ``q̂ − λ × cost / max cost`` (cost is
  the mean per-call cost in the training data, else the catalog price of the request);
  with ``quality_target`` the cheapest model whose ``q̂`` reaches that share of the best
  ``q̂`` wins; ``cost_target`` (a share of the dearest model's average cost) takes λ from
  the artifact's held-out calibration (``pointsman train --calibrate-folds K``). The
  pick is returned as the signal's route target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pointsman.artifacts import read_artifact
from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.learned.calibration import lambda_for_cost
from pointsman.learned.features import prompt_text
from pointsman.learned.focus import TextFocus, last_user_text
from pointsman.learned.options import Options
from pointsman.learned.utility import cheapest_within, choose_by_utility
from pointsman.learning import FloatArray, Learner, strong_win_score
from pointsman.signals.base import RouteTarget, Signal
from pointsman.types import RouteRequest

KNOWN = {"artifact", "strong", "weak", "models", "lambda", "quality_target", "cost_target"}


class LearnedScorer:
    """Scores requests with a fitted learner; see the module docstring."""

    def __init__(self, learner: Learner, models: tuple[str, ...], *, name: str,
                 prior: FloatArray | None = None, strong: str | None = None,
                 weak: str | None = None, mapping: Mapping[str, str] | None = None,
                 costs: FloatArray | None = None, lam: float | None = None,
                 quality_target: float | None = None) -> None:
        self.name = name
        self.learner = learner
        self.models = models
        means = prior if prior is not None else np.linspace(0.0, 1.0, len(models))
        self.strong = _column(models, strong, int(np.argmax(means)), "strong")
        self.weak = _column(models, weak, int(np.argmin(means)), "weak")
        self.mapping = dict(mapping or {})
        self.columns = [_column(models, m, 0, "models") for m in self.mapping]
        self.costs = costs
        self.lam = lam
        self.quality_target = quality_target

    def score(self, request: RouteRequest) -> Signal:
        quality = self.learner.predict_quality([self._text(request)])
        row = quality[0]
        win = float(strong_win_score(quality, self.strong, self.weak)[0])
        signals = {f"q:{m}": round(float(q), 4) for m, q in zip(self.models, row, strict=True)}
        return Signal(100.0 * win, signals, target=self._target(row))

    def _text(self, request: RouteRequest) -> str:
        """What the learner was trained on: the last user turn when it strips shared
        prefixes (the question a template wraps), else the whole conversation."""
        focus = getattr(self.learner, "text_focus", None)
        if isinstance(focus, TextFocus) and focus.active:
            return last_user_text(request)
        return prompt_text(request)

    def _target(self, row: FloatArray) -> RouteTarget | None:
        if not self.mapping:
            return None
        q = row[self.columns]
        costs = self.costs[self.columns] if self.costs is not None else None
        if self.quality_target is not None:
            pick = cheapest_within(q, costs, self.quality_target)
            how = f"cheapest within {self.quality_target:.0%} of the best predicted quality"
        else:
            # Relative to the dearest model of the artifact, as in the λ calibration.
            top = float(np.nanmax(self.costs)) if self.costs is not None and np.isfinite(
                self.costs).any() else None
            pick = choose_by_utility(q, costs, self.lam or 0.0, top)
            how = f"best predicted quality − {self.lam or 0.0:g} × relative cost"
        column = list(self.mapping)[pick]
        return RouteTarget(self.name, model=self.mapping[column],
                           detail=f"{how}; q̂({column}) = {q[pick]:.3f}")


def _column(models: tuple[str, ...], name: str | None, default: int, what: str) -> int:
    if name is None:
        return default
    if name not in models:
        raise ConfigError(f"router.scorer_options.{what}: {name!r} is not a model of the "
                          f"artifact; it has {list(models)}")
    return models.index(name)


def learned_scorer(config: PointsmanConfig, options: Mapping[str, Any], kind: str
                   ) -> LearnedScorer:
    """The ``router.scorer: <kind>`` factory: loads ``scorer_options.artifact``."""
    opts = Options(f"router.scorer_options ({kind})", options, KNOWN)
    path = opts.optional_string("artifact")
    if path is None:
        raise ConfigError(f"router.scorer_options.artifact: scorer {kind!r} needs the path of "
                          "an artifact written by `pointsman train`")
    artifact = read_artifact(path)
    if artifact.name != kind:
        raise ConfigError(f"router.scorer_options.artifact: {path} holds a {artifact.name!r} "
                          f"router, not {kind!r}")
    learner = artifact.learner
    models = tuple(getattr(learner, "models", ()))
    mapping = opts.mapping("models")
    _check_catalog(config, mapping)
    lam = opts.number("lambda", 0.0, low=0.0) if "lambda" in options else None
    if "cost_target" in options:
        lam = lambda_for_cost(artifact.metadata.get("lambda_curve"),
                              opts.number("cost_target", 1.0, low=0.0))
    target = (opts.number("quality_target", 0.95, low=0.0, high=1.0)
              if "quality_target" in options else None)
    if mapping and lam is None and target is None:
        raise ConfigError("router.scorer_options: `models` needs `lambda`, `cost_target` or "
                          "`quality_target`")
    costs = getattr(learner, "mean_cost", None)
    return LearnedScorer(learner, models, name=kind, prior=getattr(learner, "prior", None),
                         strong=opts.optional_string("strong"),
                         weak=opts.optional_string("weak"), mapping=mapping,
                         costs=costs, lam=lam, quality_target=target)


def _check_catalog(config: PointsmanConfig, mapping: Mapping[str, str]) -> None:
    unknown = [m for m in mapping.values() if m not in config.router.candidates]
    if unknown:
        raise ConfigError(f"router.scorer_options.models: {unknown} are not in "
                          f"router.candidates {config.router.candidates}")
