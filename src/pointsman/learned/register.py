"""Registers the learned routers: learners for ``pointsman train``/``eval``, scorers for the
router (``router.scorer: knn | logreg | mf | finetune | semantic | llm | hybrid``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pointsman.catalog import Catalog
from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.learned.answer_judge import AnswerJudgeLearner
from pointsman.learned.base import EmbeddingLearner
from pointsman.learned.classifier import LogisticLearner
from pointsman.learned.ensemble import EnsembleLearner
from pointsman.learned.finetune import FineTuneLearner
from pointsman.learned.hybrid import hybrid_scorer
from pointsman.learned.knn import KnnLearner
from pointsman.learned.llm_router import DEFAULT_CLASSES, LlmRouterScorer
from pointsman.learned.mf import MatrixFactorisationLearner
from pointsman.learned.model_call import ModelCall, ProviderCall
from pointsman.learned.options import Options
from pointsman.learned.scorer import learned_scorer
from pointsman.learned.semantic import semantic_scorer
from pointsman.registry import create_scorer, learners, scorers
from pointsman.router import resolve_catalog
from pointsman.signals.base import ComplexityScorer

LearnerClass = type[EmbeddingLearner] | type[EnsembleLearner] | type[FineTuneLearner]
LEARNERS: dict[str, LearnerClass] = {
    "knn": KnnLearner, "logreg": LogisticLearner, "mf": MatrixFactorisationLearner,
    "ensemble": EnsembleLearner, "finetune": FineTuneLearner}


def _learner_factory(cls: LearnerClass) -> Callable[[Mapping[str, Any]], Any]:
    return lambda options: cls(options)


def _scorer_factory(kind: str) -> Callable[[PointsmanConfig, Mapping[str, Any]],
                                          ComplexityScorer]:
    return lambda config, options: learned_scorer(config, options, kind)


def llm_scorer(config: PointsmanConfig, options: Mapping[str, Any],
               caller: Callable[[str], ModelCall] | None = None) -> LlmRouterScorer:
    """``router.scorer: llm``: options ``model`` (catalog name), ``timeout_s``,
    ``cache_size``, ``classes`` ({name: complexity}), ``base`` (fallback scorer).

    ``caller`` turns the model's name into the call that asks it (the gateway's goes
    through its executor); by default the model's first usable deployment is called
    directly (``providers`` config).
    """
    opts = Options("router.scorer_options (llm)", options,
                   {"model", "timeout_s", "cache_size", "classes", "base"})
    model = opts.string("model", "gpt-4o-mini")
    classes = options.get("classes") or DEFAULT_CLASSES
    if not isinstance(classes, Mapping) or not all(
            isinstance(v, int | float) and 0 <= v <= 100 for v in classes.values()):
        raise ConfigError("router.scorer_options.classes must map class names to 0-100")
    base = opts.string("base", "heuristic")
    if base in ("llm", "hybrid"):
        raise ConfigError(f"router.scorer_options.base: {base!r} cannot be the LLM's fallback")
    fallback = create_scorer(config, base, {})
    catalog = resolve_catalog(config)
    if model not in catalog:
        raise ConfigError(f"router.scorer_options.model: unknown model {model!r}")
    call = caller(model) if caller is not None else _direct_call(config, catalog, model)
    return LlmRouterScorer(call, fallback,
                           timeout_s=opts.number("timeout_s", 2.0, low=0.01),
                           classes={str(k): float(v) for k, v in classes.items()},
                           cache_size=opts.integer("cache_size", 10_000))


def _direct_call(config: PointsmanConfig, catalog: Catalog, model: str) -> ModelCall:
    """A call to ``model``'s first usable deployment."""
    from pointsman.providers.config import build_providers

    deployments = build_providers(config, catalog).deployments(model)
    if not deployments:
        raise ConfigError(f"router.scorer_options.model: {model!r} has no usable deployment "
                          "(is its endpoint's API key set?)")
    first = deployments[0]
    return ProviderCall(first.provider, first.upstream_model, catalog.get(model))


for _name, _cls in LEARNERS.items():
    learners.register(_name, _learner_factory(_cls))
    scorers.register(_name, _scorer_factory(_name))
learners.register("answer-judge", lambda options: AnswerJudgeLearner(options))
scorers.register("semantic", semantic_scorer)
scorers.register("llm", llm_scorer)
scorers.register("hybrid", hybrid_scorer)
