"""Learned artifacts as router scorers: two-model threshold, many-model choice, hybrid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pointsman.artifacts import save_learner
from pointsman.config import _merge, default_config_data, parse_config
from pointsman.errors import ConfigError
from pointsman.learning import OutcomeTable
from pointsman.registry import learners
from pointsman.router import Router
from pointsman.types import RouteRequest

HARD = "prove the theorem about prime gaps number {}"
EASY = "say hello to my good friend number {}"
MODELS = ("small", "medium", "large")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """small is right on easy prompts, medium and large on all; large costs the most."""
    prompts, quality = [], []
    for i in range(40):
        hard = i % 2 == 0
        prompts.append((HARD if hard else EASY).format(i))
        quality.append([0.0 if hard else 1.0, 0.9 if hard else 1.0, 1.0])
    cost = np.tile([0.0001, 0.001, 0.01], (40, 1))
    learner = learners.get("knn")({"encoder": "hashing", "k": 5, "prior_strength": 0})
    learner.fit(OutcomeTable(tuple(prompts), MODELS, np.array(quality), cost))
    return save_learner(learner, tmp_path_factory.mktemp("a") / "knn.npz")


def router(router_cfg: dict[str, Any]) -> Router:
    return Router(parse_config(_merge(default_config_data(), {"router": router_cfg}), "t.yaml"))


def test_many_models_by_quality_minus_lambda_cost(artifact: Path) -> None:
    mapping = {"small": "gpt-4.1-nano", "medium": "gpt-4o-mini", "large": "gpt-4.1"}
    r = router({"scorer": "knn", "scorer_options": {
        "artifact": str(artifact), "models": mapping, "lambda": 0.2}})
    easy = r.decide(RouteRequest.from_prompt(EASY.format(99)))
    hard = r.decide(RouteRequest.from_prompt(HARD.format(99)))
    assert easy.model == "gpt-4.1-nano" and easy.rule == "route:knn"
    assert hard.model == "gpt-4o-mini"  # 0.9 - 0.2 × 0.1 beats 1.0 - 0.2
    greedy = router({"scorer": "knn", "scorer_options": {
        "artifact": str(artifact), "models": mapping, "lambda": 0}})
    assert greedy.decide(RouteRequest.from_prompt(HARD.format(99))).model == "gpt-4.1"
    target = router({"scorer": "knn", "scorer_options": {
        "artifact": str(artifact), "models": mapping, "quality_target": 0.85}})
    assert target.decide(RouteRequest.from_prompt(HARD.format(99))).model == "gpt-4o-mini"


def test_scorer_option_errors(artifact: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "needs the path of an artifact"),
        ({"artifact": str(artifact), "strong": "gpt-9"}, "not a model of the artifact"),
        ({"artifact": str(artifact), "models": {"small": "gpt-4.1-nano"}}, "needs `lambda`"),
        ({"artifact": str(artifact), "models": {"small": "nope"}, "lambda": 1},
         "not in router.candidates"),
        ({"artifact": str(artifact), "colour": "red"}, "unknown options"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            router({"scorer": "knn", "scorer_options": options})
    with pytest.raises(ConfigError, match="holds a 'knn' router, not 'logreg'"):
        router({"scorer": "logreg", "scorer_options": {"artifact": str(artifact)}})


def test_hybrid_from_config_records_the_stage(artifact: Path) -> None:
    r = router({"scorer": "hybrid", "scorer_options": {
        "low": 10, "high": 90, "embedding": "knn",
        "embedding_options": {"artifact": str(artifact), "strong": "large", "weak": "small"}}})
    decision = r.decide(RouteRequest.from_prompt(HARD.format(5)))
    assert decision.stage == "embedding" and decision.strategy == "hybrid/weighted"
    assert decision.scores["complexity"] > 60
    sure = router({"scorer": "hybrid", "scorer_options": {
        "low": 99, "high": 100, "embedding_options": {"artifact": str(artifact)}}})
    assert sure.decide(RouteRequest.from_prompt("hi")).stage == "heuristic"


def test_cost_target_uses_the_held_out_lambda_calibration(tmp_path: Path) -> None:
    from pointsman.learned.calibration import lambda_curve, lambda_for_cost, out_of_fold

    prompts = tuple((HARD if i % 2 == 0 else EASY).format(i) for i in range(40))
    quality = np.array([[0.0, 0.9, 1.0] if i % 2 == 0 else [1.0, 1.0, 1.0] for i in range(40)])
    data = OutcomeTable(prompts, MODELS, quality, np.tile([0.0001, 0.001, 0.01], (40, 1)))

    def make() -> Any:
        return learners.get("knn")({"encoder": "hashing", "k": 5, "prior_strength": 0})

    curve = lambda_curve(out_of_fold(make, data, 4), data)
    assert curve[0]["lambda"] == 0 and curve[0]["relative_cost"] == pytest.approx(0.505)
    assert curve[-1]["relative_cost"] < 0.1
    assert lambda_for_cost(curve, 1.0) == 0.0  # the best quality is affordable
    learner = make()
    learner.fit(data)
    path = save_learner(learner, tmp_path / "c.npz", {"lambda_curve": curve})
    mapping = {"small": "gpt-4.1-nano", "medium": "gpt-4o-mini", "large": "gpt-4.1"}
    r = router({"scorer": "knn", "scorer_options": {
        "artifact": str(path), "models": mapping, "cost_target": 0.2}})
    assert r.decide(RouteRequest.from_prompt(HARD.format(1))).model == "gpt-4o-mini"
    with pytest.raises(ConfigError, match="below the cheapest"):
        lambda_for_cost(curve, 0.0)
    with pytest.raises(ConfigError, match="calibrate-folds"):
        lambda_for_cost(None, 0.5)
