"""The weighted score: complexity fit × cost × latency → one number per candidate.

- fit: 1 when the model's quality prior covers the request's complexity, falling
  linearly to 0 as the shortfall reaches ``fit_scale`` points;
- cost: 1 for the cheapest candidate, 0 for the dearest, on a log scale of the
  estimated cost of this request;
- latency: the same on the expected latency (live p95 when known, else the catalog's).

The best total wins; ties go to the cheaper model, then to the name, so the result
is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter

from pointsman.config import Weights
from pointsman.types import CandidateScore, LiveState, ModelSpec

_EPS_COST = 1e-7
_NO_BONUS: dict[str, float] = {}
# CandidateScore(...) runs a Python-level __new__; the tuple's own builds the same object
_new = tuple.__new__
_TOTAL = itemgetter(1)
_COST_NAME = itemgetter(5, 0)


def fit(quality: float, complexity: float, fit_scale: float) -> float:
    if quality >= complexity:
        return 1.0
    return max(0.0, 1.0 - (complexity - quality) / fit_scale)


def _normalised_inverse(values: Sequence[float]) -> list[float]:
    """1 for the smallest value, 0 for the largest, linear in log space."""
    logs = list(map(math.log, values))
    low, high = min(logs), max(logs)
    span = high - low
    if span < 1e-12:
        return [1.0] * len(values)
    return [(high - x) / span for x in logs]


def expected_latency_ms(spec: ModelSpec, state: LiveState) -> float:
    stats = state.latency.get(spec.name)
    if stats is not None and stats.samples > 0:
        return max(stats.p95_total_ms, 1.0)
    return spec.latency_ms


def _latencies(candidates: Sequence[ModelSpec], state: LiveState) -> tuple[float, ...]:
    if not state.latency:  # no live figures: the catalog's
        return tuple([c.latency_ms for c in candidates])
    return tuple([expected_latency_ms(c, state) for c in candidates])


@lru_cache(maxsize=1024)
def _latency_scores(latencies: tuple[float, ...]) -> tuple[float, ...]:
    """Memoised: the inputs repeat (catalog figures, slowly moving live p95s)."""
    return tuple(_normalised_inverse(latencies))


def score_candidates(
    candidates: Sequence[ModelSpec],
    complexity: float,
    input_tokens: int,
    output_tokens: int,
    weights: Weights,
    fit_scale: float,
    state: LiveState,
) -> list[CandidateScore]:
    """Score every candidate; the list is sorted best first."""
    costs = [c.cost(input_tokens, output_tokens) for c in candidates]
    cost_scores = _normalised_inverse([c + _EPS_COST for c in costs])
    latency_scores = _latency_scores(_latencies(candidates, state))
    wq, wc, wl = weights.quality, weights.cost, weights.latency
    bonuses = state.bandit_bonus or _NO_BONUS
    scored = [
        _new(CandidateScore, (spec.name, wq * (f := fit(spec.quality, complexity, fit_scale))
                              + wc * cs + wl * ls + (b := bonuses.get(spec.name, 0.0)), f, cs,
                              ls, cost, b))
        for spec, cost, cs, ls in zip(candidates, costs, cost_scores, latency_scores,
                                      strict=True)
    ]
    # best total first; ties to the cheaper, then by name (two stable sorts on C-level keys)
    scored.sort(key=_COST_NAME)
    scored.sort(key=_TOTAL, reverse=True)
    return scored
