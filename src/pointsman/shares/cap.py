"""The router's side of tier-share targets (pure): the threshold in force for a tier, and
the cap that moves a score-based choice out of a tier whose threshold the score misses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pointsman.types import TIERS, CandidateScore, ModelSpec

_RANK = {tier: i for i, tier in enumerate(TIERS)}


def allowed(spec: ModelSpec, score: float, thresholds: Mapping[str, float]) -> bool:
    """Whether a request of ``score`` (in [0, 1]) may go to ``spec``'s tier."""
    threshold = thresholds.get(spec.tier)
    return threshold is None or score >= threshold


def cap(chosen: ModelSpec, eligible: Sequence[ModelSpec], ranked: Sequence[CandidateScore],
        score: float, thresholds: Mapping[str, float]
        ) -> tuple[ModelSpec, float | None, str]:
    """(the model, the threshold in force for its decision, a note for the reason).

    A choice in a capped tier whose threshold ``score`` misses moves to the best-ranked
    eligible candidate of a cheaper tier the score is allowed; none: the choice stands,
    and the note says so. The threshold recorded is the one checked (for a tier without a
    target: the nearest capped tier's above it, the bar the request stayed under)."""
    threshold = thresholds.get(chosen.tier)
    rank = _RANK.get(chosen.tier, len(TIERS))
    if threshold is None:  # an uncapped tier: the bar of the nearest capped tier above
        above = [t for t in TIERS[rank + 1:] if t in thresholds]
        return chosen, thresholds[above[0]] if above else None, ""
    if score >= threshold:
        return chosen, threshold, ""
    order = {c.model: i for i, c in enumerate(ranked)}
    pool = [s for s in eligible if _RANK.get(s.tier, len(TIERS)) < rank
            and allowed(s, score, thresholds)]
    why = f"score {score:.3f} < {chosen.tier} threshold {threshold:.3f} (tier-share target)"
    if not pool:
        return chosen, threshold, f"{why}, but no cheaper candidate is eligible"
    moved = min(pool, key=lambda s: (order.get(s.name, len(order)), s.name))
    return moved, threshold, f"{why}: {moved.name} instead of {chosen.name}"
