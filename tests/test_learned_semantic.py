"""Semantic intent routes: threshold fitting, matching, and the router naming the route."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pointsman.config import _merge, default_config_data, parse_config
from pointsman.errors import ConfigError
from pointsman.learned.semantic import fit_threshold
from pointsman.router import Router
from pointsman.types import RouteRequest

ROUTES: dict[str, Any] = {
    "encoder": "hashing",
    "routes": [
        {"name": "refunds", "model": "claude-haiku-4-5",
         "utterances": ["I want a refund for my order", "refund my purchase please",
                        "how do I get my money back for this order"]},
        {"name": "legal", "tier": "premium",
         "utterances": ["review this contract clause for liability",
                        "is this non-compete clause enforceable in the contract",
                        "draft an indemnity clause for the contract"],
         "negatives": ["what is the weather like today"]},
    ],
}


def router(extra: dict[str, Any] | None = None) -> Router:
    data = _merge(default_config_data(), {"router": {"scorer": "semantic"},
                                          "semantic_routes": ROUTES, **(extra or {})})
    return Router(parse_config(data, "test.yaml"))


def test_fit_threshold_separates_the_classes() -> None:
    cut = fit_threshold(np.array([0.8, 0.9, 0.85]), np.array([0.2, 0.4, 0.3]), 0.5)
    assert 0.4 < cut < 0.8
    assert fit_threshold(np.array([]), np.array([0.1]), 0.42) == 0.42
    overlapping = fit_threshold(np.array([0.5, 0.9]), np.array([0.6, 0.1]), 0.5)
    assert 0.1 < overlapping <= 0.9


def test_matching_requests_follow_their_route() -> None:
    r = router()
    refund = r.decide(RouteRequest.from_prompt("please refund my order, I want my money back"))
    assert refund.model == "claude-haiku-4-5"
    assert refund.rule == "route:refunds" and refund.stage == "semantic"
    assert "similarity" in refund.reason and "route:refunds" in refund.signals
    legal = r.decide(RouteRequest.from_prompt("review the liability clause of this contract"))
    assert legal.rule == "route:legal"
    assert r.catalog.get(legal.model).tier == "premium"


def test_other_requests_route_on_the_base_scorer() -> None:
    decision = router().decide(RouteRequest.from_prompt("What is the capital of France?"))
    assert decision.rule is None or not decision.rule.startswith("route:")
    assert decision.stage is None
    assert decision.strategy == "semantic/weighted"


def test_config_errors_name_the_field() -> None:
    bad_target = {**ROUTES, "routes": [{"name": "x", "model": "gpt-99", "utterances": ["a"]}]}
    with pytest.raises(ConfigError, match=r"semantic_routes.routes.x.model"):
        router({"semantic_routes": bad_target})
    both = {**ROUTES, "routes": [{"name": "x", "model": "gpt-4.1", "tier": "cheap",
                                  "utterances": ["a"]}]}
    with pytest.raises(ConfigError, match="exactly one of model or tier"):
        router({"semantic_routes": both})
    with pytest.raises(ConfigError, match="needs routes"):
        router({"semantic_routes": {"routes": []}})
    with pytest.raises(ConfigError, match="unknown options"):
        router({"router": {"scorer": "semantic", "scorer_options": {"bogus": 1}}})


def test_real_minilm_matches_paraphrases() -> None:
    from pointsman.embeddings import packaged_model_dir

    try:
        packaged_model_dir()
    except ConfigError as exc:
        pytest.skip(f"packaged MiniLM is absent ({exc.message})")
    r = router({"semantic_routes": {**ROUTES, "encoder": "minilm:128"}})
    refund = r.decide(RouteRequest.from_prompt("Can I have my cash returned? The parcel "
                                               "arrived broken."))
    assert refund.rule == "route:refunds"
    other = r.decide(RouteRequest.from_prompt("Write a haiku about autumn leaves."))
    assert other.rule is None or not other.rule.startswith("route:")
