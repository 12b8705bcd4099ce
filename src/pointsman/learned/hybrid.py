"""A hybrid cascade of scorers: cheap and sure first, expensive only when needed.

1. The heuristic decides when it is sure: its complexity is at most ``low`` or at least
   ``high``.
2. Otherwise the embedding router (``embedding``: a learned scorer name, with
   ``embedding_options``) decides when it is confident: its complexity is at least
   ``margin`` points away from the decision point (``router.threshold × 100`` in threshold
   mode, else 50).
3. Otherwise the LLM-as-router decides (when ``llm_options`` are given), awaited by the
   gateway; the synchronous path uses its cache, else the embedding router's answer.

``Signal.stage`` records the stage that decided: ``heuristic``, ``embedding``, ``llm``
(or the LLM's ``llm-fallback:<why>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.learned.model_call import CallModel
from pointsman.learned.options import Options
from pointsman.registry import create_scorer
from pointsman.signals.base import AsyncComplexityScorer, ComplexityScorer, Signal
from pointsman.types import RouteRequest


class HybridScorer:
    name = "hybrid"

    def __init__(self, heuristic: ComplexityScorer, embedding: ComplexityScorer,
                 llm: AsyncComplexityScorer | None = None, *, low: float = 20.0,
                 high: float = 80.0, margin: float = 15.0, center: float = 50.0) -> None:
        if low > high:
            raise ConfigError(f"router.scorer_options: low ({low}) is above high ({high})")
        self.heuristic = heuristic
        self.embedding = embedding
        self.llm = llm
        self.low, self.high, self.margin, self.center = low, high, margin, center

    def _early(self, request: RouteRequest) -> Signal | None:
        first = self.heuristic.score(request)
        if first.score <= self.low or first.score >= self.high:
            return replace(first, stage="heuristic")
        second = self.embedding.score(request)
        if self.llm is None or abs(second.score - self.center) >= self.margin:
            return replace(second, task_type=second.task_type or first.task_type,
                           stage="embedding")
        return None

    def score(self, request: RouteRequest) -> Signal:
        early = self._early(request)
        if early is not None:
            return early
        assert self.llm is not None
        cached = self.llm.score(request)
        if cached.stage == "llm":
            return cached
        return replace(self.embedding.score(request), stage="embedding")

    async def ascore(self, request: RouteRequest) -> Signal:
        early = self._early(request)
        if early is not None:
            return early
        assert self.llm is not None
        return await self.llm.ascore(request)


def hybrid_scorer(config: PointsmanConfig, options: Mapping[str, Any],
                  call_model: CallModel | None = None) -> HybridScorer:
    """``router.scorer: hybrid``; see the module docstring for the options. ``call_model``
    (the gateway's goes through its executor) carries the LLM stage's calls: its scorer
    is built through the registry like any other, handed the same service."""
    known = {"low", "high", "margin", "heuristic", "embedding", "embedding_options",
             "llm_options"}
    opts = Options("router.scorer_options (hybrid)", options, known)
    heuristic = create_scorer(config, opts.string("heuristic", "heuristic"), {})
    embedding = create_scorer(config, opts.string("embedding", "knn"),
                              _sub(options, "embedding_options"))
    llm = None
    if options.get("llm_options") is not None:
        built = create_scorer(config, "llm", _sub(options, "llm_options"), call_model)
        if not isinstance(built, AsyncComplexityScorer):
            raise ConfigError("router.scorer_options.llm_options: the 'llm' scorer "
                              "registered does not score asynchronously")
        llm = built
    rc = config.router
    center = rc.threshold * 100.0 if rc.mode == "threshold" else 50.0
    return HybridScorer(heuristic, embedding, llm, low=opts.number("low", 20.0),
                        high=opts.number("high", 80.0),
                        margin=opts.number("margin", 15.0, low=0.0), center=center)


def _sub(options: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = options.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"router.scorer_options.{key} must be a mapping")
    return value
