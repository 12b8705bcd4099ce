"""pointsman: send each LLM request to the cheapest model that will answer it well."""

from pointsman.catalog import Catalog
from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import PointsmanError
from pointsman.router import Router
from pointsman.signals.base import ComplexityScorer, Signal
from pointsman.types import (
    BudgetView,
    Decision,
    LatencyStats,
    LiveState,
    Message,
    ModelSpec,
    RouteRequest,
)

__version__ = "0.1.0"

__all__ = [
    "BudgetView",
    "Catalog",
    "ComplexityScorer",
    "Decision",
    "LatencyStats",
    "LiveState",
    "Message",
    "ModelSpec",
    "PointsmanConfig",
    "PointsmanError",
    "RouteRequest",
    "Router",
    "Signal",
    "__version__",
    "load_config",
]
