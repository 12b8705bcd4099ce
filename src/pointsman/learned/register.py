"""Registers the learned routers: learners for ``pointsman train``/``eval``, scorers for the
router (``router.scorer: knn | logreg | mf | semantic | llm | hybrid``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.learned.base import EmbeddingLearner
from pointsman.learned.classifier import LogisticLearner
from pointsman.learned.hybrid import hybrid_scorer
from pointsman.learned.knn import KnnLearner
from pointsman.learned.llm_router import DEFAULT_CLASSES, LlmRouterScorer
from pointsman.learned.mf import MatrixFactorisationLearner
from pointsman.learned.options import Options
from pointsman.learned.scorer import learned_scorer
from pointsman.learned.semantic import semantic_scorer
from pointsman.providers.base import Provider
from pointsman.registry import create_scorer, learners, scorers
from pointsman.signals.base import ComplexityScorer

LEARNERS: dict[str, type[EmbeddingLearner]] = {
    "knn": KnnLearner, "logreg": LogisticLearner, "mf": MatrixFactorisationLearner}


def _learner_factory(cls: type[EmbeddingLearner]) -> Callable[[Mapping[str, Any]], Any]:
    return lambda options: cls(options)


def _scorer_factory(kind: str) -> Callable[[PointsmanConfig, Mapping[str, Any]],
                                          ComplexityScorer]:
    return lambda config, options: learned_scorer(config, options, kind)


def llm_scorer(config: PointsmanConfig, options: Mapping[str, Any],
               provider: Provider | None = None) -> LlmRouterScorer:
    """``router.scorer: llm``: options ``model`` (catalog name), ``timeout_s``,
    ``cache_size``, ``classes`` ({name: complexity}), ``base`` (fallback scorer)."""
    opts = Options("router.scorer_options (llm)", options,
                   {"model", "timeout_s", "cache_size", "classes", "base"})
    model = opts.string("model", "gpt-4o-mini")
    if model not in config.router.candidates and model not in config.catalog.models:
        from pointsman.router import resolve_catalog

        if model not in resolve_catalog(config):
            raise ConfigError(f"router.scorer_options.model: unknown model {model!r}")
    classes = options.get("classes") or DEFAULT_CLASSES
    if not isinstance(classes, Mapping) or not all(
            isinstance(v, int | float) and 0 <= v <= 100 for v in classes.values()):
        raise ConfigError("router.scorer_options.classes must map class names to 0-100")
    base = opts.string("base", "heuristic")
    if base in ("llm", "hybrid"):
        raise ConfigError(f"router.scorer_options.base: {base!r} cannot be the LLM's fallback")
    return LlmRouterScorer(provider or _provider(config, model), _wire_name(config, model),
                           create_scorer(config, base, {}),
                           timeout_s=opts.number("timeout_s", 2.0, low=0.01),
                           classes={str(k): float(v) for k, v in classes.items()},
                           cache_size=opts.integer("cache_size", 10_000))


def _wire_name(config: PointsmanConfig, model: str) -> str:
    from pointsman.router import resolve_catalog

    return resolve_catalog(config).get(model).wire_name


def _provider(config: PointsmanConfig, model: str) -> Provider:
    """The provider adapter for ``model``, when the provider layer offers a factory."""
    module = import_module("pointsman.providers")
    build = getattr(module, "provider_for_model", None)
    if build is None:
        raise ConfigError("router.scorer: llm needs a provider adapter for "
                          f"{model!r}, and this build has no provider factory")
    provider = build(config, model)
    if not isinstance(provider, Provider):
        raise ConfigError(f"router.scorer: llm: no provider for {model!r}")
    return provider


for _name, _cls in LEARNERS.items():
    learners.register(_name, _learner_factory(_cls))
    scorers.register(_name, _scorer_factory(_name))
scorers.register("semantic", semantic_scorer)
scorers.register("llm", llm_scorer)
scorers.register("hybrid", hybrid_scorer)
