"""Registers the learned routers: learners for ``pointsman train``/``eval``, scorers for the
router (``router.scorer: knn | logreg | mf | finetune | semantic | llm | hybrid``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from pointsman.learned.model_call import CallModel, direct_calls
from pointsman.learned.options import Options
from pointsman.learned.scorer import learned_scorer
from pointsman.learned.semantic import semantic_scorer
from pointsman.registry import ScorerFactory, create_scorer, learners, scorers
from pointsman.router import resolve_catalog

LearnerClass = type[EmbeddingLearner] | type[EnsembleLearner] | type[FineTuneLearner]
LEARNERS: dict[str, LearnerClass] = {
    "knn": KnnLearner, "logreg": LogisticLearner, "mf": MatrixFactorisationLearner,
    "ensemble": EnsembleLearner, "finetune": FineTuneLearner}


def _learner_factory(cls: LearnerClass) -> Callable[[Mapping[str, Any]], Any]:
    return lambda options: cls(options)


def _scorer_factory(kind: str) -> ScorerFactory:
    return lambda config, options, call_model: learned_scorer(config, options, kind)


def llm_scorer(config: PointsmanConfig, options: Mapping[str, Any],
               call_model: CallModel | None = None) -> LlmRouterScorer:
    """``router.scorer: llm``: options ``model`` (catalog name), ``timeout_s``,
    ``cache_size``, ``classes`` ({name: complexity}), ``base`` (fallback scorer).

    ``call_model`` asks the model (the gateway's goes through its executor); without one
    the model's first usable deployment is called directly (``providers`` config).
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
    if model not in resolve_catalog(config):
        raise ConfigError(f"router.scorer_options.model: unknown model {model!r}")
    calls = call_model or direct_calls(config)
    return LlmRouterScorer(calls(model, "router.scorer_options.model"), fallback,
                           timeout_s=opts.number("timeout_s", 2.0, low=0.01),
                           classes={str(k): float(v) for k, v in classes.items()},
                           cache_size=opts.integer("cache_size", 10_000))


for _name, _cls in LEARNERS.items():
    learners.register(_name, _learner_factory(_cls))
    scorers.register(_name, _scorer_factory(_name))
learners.register("answer-judge", lambda options: AnswerJudgeLearner(options))
scorers.register("semantic", semantic_scorer)
scorers.register("llm", llm_scorer)
scorers.register("hybrid", hybrid_scorer)
