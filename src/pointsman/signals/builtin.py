"""Registers the built-in, dependency-free scorers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.registry import scorers
from pointsman.signals.base import ComplexityScorer
from pointsman.signals.heuristic import HeuristicScorer


def _heuristic(config: PointsmanConfig, options: Mapping[str, Any],
               call_model: object = None) -> ComplexityScorer:
    if options:
        raise ConfigError(
            f"router.scorer_options: heuristic takes no options, got {sorted(options)}")
    return HeuristicScorer(config.heuristic)


scorers.register("heuristic", _heuristic)
