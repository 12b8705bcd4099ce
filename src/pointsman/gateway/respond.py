"""The ``x-pointsman-*`` headers of an answer (the same on every door)."""

from __future__ import annotations

from collections.abc import Sequence

from pointsman.errors import AllAttemptsFailedError, PointsmanError
from pointsman.types import Decision


def ascii_header(value: str) -> str:
    """Header values are latin-1: keep them ASCII."""
    return value.encode("ascii", "replace").decode("ascii").replace("\n", " ")


def decision_headers(decision: Decision, model: str, attempts: Sequence[str],
                     cost_usd: float) -> dict[str, str]:
    """``cost_usd``: the answer's; the routing call's cost (LLM-as-router) is added. To
    the nanodollar (9 decimals), the ledger's unit: the header says what was charged."""
    return {"x-pointsman-model": model,
            "x-pointsman-reason": ascii_header(decision.reason),
            "x-pointsman-cost-usd": f"{cost_usd + decision.routing_cost_usd:.9f}",
            "x-pointsman-attempts": ",".join(attempts)}


def tried_models(error: PointsmanError) -> list[str]:
    if isinstance(error, AllAttemptsFailedError):
        return list(dict.fromkeys(a.model for a in error.attempts))
    model = getattr(error, "model", "")
    return [model] if model else []
