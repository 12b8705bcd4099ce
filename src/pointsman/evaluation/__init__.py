"""The evaluation lab: outcome-data loaders, RouteLLM and RouterBench metrics, protocols.

``pointsman eval`` and ``pointsman calibrate`` are thin over this package; see
:mod:`pointsman.evaluation.lab` for the protocols and sweep policies,
:mod:`pointsman.evaluation.metrics` (two models) and :mod:`pointsman.evaluation.pareto`
(many models) for the metric definitions.
"""

from pointsman.evaluation.lab import evaluate, kfold_plan, split_plan, two_model_table
from pointsman.evaluation.loaders import FORMATS, load_table
from pointsman.evaluation.metrics import TwoModelMetrics, roc_auc, two_model_metrics
from pointsman.evaluation.pareto import aiq, cost_to_reach, pareto_hull, quality_within_budget
from pointsman.evaluation.routers import lab_router, router_names

__all__ = [
    "FORMATS", "TwoModelMetrics", "aiq", "cost_to_reach", "evaluate", "kfold_plan",
    "lab_router", "load_table", "pareto_hull", "quality_within_budget", "roc_auc",
    "router_names", "split_plan", "two_model_metrics", "two_model_table",
]
