"""Semantic intent routes: a request similar enough to a route's examples goes its way.

A route's similarity to a prompt is the highest cosine similarity between the prompt's
embedding and the route's utterances. The best route whose similarity reaches its
threshold sends the request to its model or tier (``Signal.target``, named
``route:<name>`` in the decision); otherwise nothing is forced and the complexity of the
base scorer (the heuristic by default) routes as usual.

Thresholds are fitted from the labelled examples when the config gives none: the
positives of a route are its own utterances, each scored leave-one-out (its similarity to
the route's other utterances); the negatives are the other routes' utterances and the
route's ``negatives``. The threshold is the midpoint of the cut that maximises balanced
accuracy ((TPR + TNR) / 2) over those scores; with too few examples it is
``default_threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.learned.features import encode, prompt_text
from pointsman.learned.options import Options
from pointsman.learned.semantic_config import SemanticRoute, SemanticRoutesConfig
from pointsman.learning import FloatArray
from pointsman.registry import create_scorer
from pointsman.signals.base import ComplexityScorer, RouteTarget, Signal
from pointsman.types import RouteRequest

if TYPE_CHECKING:
    from pointsman.learned.model_call import CallModel


@dataclass(frozen=True)
class FittedRoute:
    route: SemanticRoute
    vectors: FloatArray
    threshold: float


def fit_threshold(positives: FloatArray, negatives: FloatArray, default: float) -> float:
    """The midpoint cut maximising balanced accuracy (see the module docstring)."""
    if len(positives) == 0 or len(negatives) == 0:
        return default
    values = np.unique(np.concatenate([positives, negatives]))
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2,
                           [values[-1] + 1e-6]])
    tpr = (positives[None, :] >= cuts[:, None]).mean(axis=1)
    tnr = (negatives[None, :] < cuts[:, None]).mean(axis=1)
    best = np.flatnonzero((tpr + tnr) >= (tpr + tnr).max() - 1e-12)
    return float(cuts[best].mean())


def fit_routes(config: SemanticRoutesConfig) -> list[FittedRoute]:
    vectors = [encode(config.encoder, r.utterances) for r in config.routes]
    negatives = [encode(config.encoder, r.negatives) if r.negatives else None
                 for r in config.routes]
    fitted = []
    for i, route in enumerate(config.routes):
        own = vectors[i]
        others = [v for j, v in enumerate(vectors) if j != i]
        extra = negatives[i]
        if extra is not None:
            others.append(extra)
        neg = (np.concatenate(others) @ own.T).max(axis=1) if others else np.zeros(0)
        sims = own @ own.T
        np.fill_diagonal(sims, -np.inf)
        pos = sims.max(axis=1) if len(own) > 1 else np.zeros(0)
        threshold = route.threshold if route.threshold is not None else fit_threshold(
            pos, neg, config.default_threshold)
        fitted.append(FittedRoute(route, own, threshold))
    return fitted


class SemanticScorer:
    """Matches requests to semantic routes; the base scorer gives the complexity."""

    name = "semantic"

    def __init__(self, config: SemanticRoutesConfig, base: ComplexityScorer) -> None:
        self.config = config
        self.base = base
        self.routes = fit_routes(config)

    def match(self, text: str) -> tuple[FittedRoute, float] | None:
        if not self.routes:
            return None
        query = encode(self.config.encoder, [text])[0]
        best: tuple[FittedRoute, float] | None = None
        for fitted in self.routes:
            sim = float((fitted.vectors @ query).max())
            if sim >= fitted.threshold and (best is None or sim > best[1]):
                best = (fitted, sim)
        return best

    def score(self, request: RouteRequest) -> Signal:
        base = self.base.score(request)
        found = self.match(prompt_text(request))
        if found is None:
            return base
        fitted, sim = found
        route = fitted.route
        target = RouteTarget(route.name, model=route.model, tier=route.tier,
                             detail=f"similarity {sim:.3f} ≥ threshold {fitted.threshold:.3f}")
        signals = {**base.signals, f"route:{route.name}": round(sim, 4)}
        return Signal(base.score, signals, base.task_type, stage="semantic", target=target)


def semantic_scorer(config: PointsmanConfig, options: Mapping[str, Any],
                    call_model: CallModel | None = None) -> SemanticScorer:
    """``router.scorer: semantic``; option ``base`` names the complexity scorer."""
    opts = Options("router.scorer_options (semantic)", options, {"base", "base_options"})
    base_name = opts.string("base", "heuristic")
    if base_name == "semantic":
        raise ConfigError("router.scorer_options.base: semantic cannot be its own base")
    base_options = options.get("base_options") or {}
    if not isinstance(base_options, Mapping):
        raise ConfigError("router.scorer_options.base_options must be a mapping")
    routes = _routes(config)
    _check_targets(config, routes)
    return SemanticScorer(routes, create_scorer(config, base_name, base_options,
                                                  call_model))


def _routes(config: PointsmanConfig) -> SemanticRoutesConfig:
    routes = getattr(config, "semantic_routes", None)
    if not isinstance(routes, SemanticRoutesConfig) or not routes.routes:
        raise ConfigError("router.scorer: semantic needs routes in the semantic_routes section")
    return routes


def _check_targets(config: PointsmanConfig, routes: SemanticRoutesConfig) -> None:
    candidates = set(config.router.candidates)
    for route in routes.routes:
        if route.model is not None and route.model not in candidates:
            raise ConfigError(f"semantic_routes.routes.{route.name}.model: {route.model!r} is "
                              f"not one of router.candidates")
