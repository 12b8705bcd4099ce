"""The lab's protocols, routers found by name, calibration and shadow replay.

The leakage guard registers a recording learner through the real registry and checks
that no prompt it is scored on was in the data it was fitted on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml

from pointsman.config import load_config
from pointsman.errors import ArtifactError, ConfigError, DataError
from pointsman.evaluation.calibrate import calibrate, write_threshold
from pointsman.evaluation.lab import evaluate, kfold_plan, split_plan, two_model_table
from pointsman.evaluation.logs import logged_requests
from pointsman.evaluation.routers import lab_router
from pointsman.evaluation.shadow import shadow_replay
from pointsman.learning import FloatArray, OutcomeTable
from pointsman.registry import learners
from pointsman.router import Router

CONFIG = load_config()


class RecordingLearner:
    """Predicts that prompts containing "hard" need the best model; records its fits."""

    fits: ClassVar[list[tuple[str, ...]]] = []
    predicted: ClassVar[list[tuple[str, ...]]] = []

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.name = "recording"
        self.models: tuple[str, ...] = ()

    def fit(self, table: OutcomeTable) -> None:
        RecordingLearner.fits.append(table.prompts)
        self.models = table.models

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        RecordingLearner.predicted.append(tuple(prompts))
        hard = np.array([1.0 if "hard" in p else 0.0 for p in prompts])
        ladder = np.linspace(0.2, 0.9, len(self.models))
        return np.clip(ladder[np.newaxis, :] - np.outer(hard, 0.6 - ladder), 0.0, 1.0)


LEARNER = f"recording-{uuid.uuid4().hex[:8]}"
learners.register(LEARNER, RecordingLearner)


def _two_table(n: int = 40) -> OutcomeTable:
    prompts = tuple(f"{'hard' if i % 4 == 0 else 'easy'} question {i}" for i in range(n))
    weak = np.array([0.0 if i % 4 == 0 else 1.0 for i in range(n)])
    strong = np.array([0.0 if i % 10 == 1 else 1.0 for i in range(n)])
    return OutcomeTable(prompts, ("small", "big"), np.column_stack([weak, strong]))


def _many_table(n: int = 30) -> OutcomeTable:
    prompts = tuple(f"{'hard' if i % 3 == 0 else 'easy'} task {i}" for i in range(n))
    hard = np.array([i % 3 == 0 for i in range(n)])
    quality = np.column_stack([np.where(hard, 0.0, 1.0), np.where(hard, 0.5, 1.0),
                               np.ones(n)])
    cost = np.tile([0.001, 0.004, 0.02], (n, 1))
    return OutcomeTable(prompts, ("cheap", "mid", "dear"), quality, cost)


def test_folds_partition_the_data_without_overlap() -> None:
    table = _two_table(23)
    plan = kfold_plan(table, 4, seed=7)
    tests = [set(p.test.prompts) for p in plan.parts]
    assert sum(len(t) for t in tests) == 23 and set().union(*tests) == set(table.prompts)
    for part in plan.parts:
        assert not set(part.train.prompts) & set(part.test.prompts)
    again = kfold_plan(table, 4, seed=7)
    assert [p.test.prompts for p in again.parts] == [p.test.prompts for p in plan.parts]
    assert plan.name == "4-fold cross-validation (seed 7)"
    with pytest.raises(DataError):
        kfold_plan(table, 1)
    with pytest.raises(DataError):
        kfold_plan(_two_table(3), 5)


def test_learner_is_never_scored_on_prompts_it_was_fitted_on() -> None:
    RecordingLearner.fits.clear()
    RecordingLearner.predicted.clear()
    plan = kfold_plan(two_model_table(_two_table()), 5)
    result = evaluate(lab_router(LEARNER, {}, CONFIG), plan, two_model=True)
    assert len(RecordingLearner.fits) == 5
    for fitted, scored in zip(RecordingLearner.fits, RecordingLearner.predicted, strict=True):
        assert scored and not set(fitted) & set(scored)
    assert result["n_test"] == 40 and result["protocol"].startswith("5-fold")
    assert result["auc"] == pytest.approx(1.0)  # "hard" is exactly "only strong right"
    assert result["apgr"] > 0.9 and result["cpt50"] is not None


def test_train_test_split_fits_on_train_only_and_names_overlap() -> None:
    RecordingLearner.fits.clear()
    table = two_model_table(_two_table())
    train, test = table.subset(range(30)), table.subset(range(25, 40))
    plan = split_plan(train, test)
    evaluate(lab_router(LEARNER, {}, CONFIG), plan, two_model=True)
    assert RecordingLearner.fits == [train.prompts]
    assert "5 test prompts also appear in the training data" in plan.name


def test_many_models_lambda_sweep_and_fixed_baselines() -> None:
    plan = kfold_plan(_many_table(), 3)
    result = evaluate(lab_router(LEARNER, {}, CONFIG), plan, two_model=False)
    assert result["best_single"]["model"] == "dear"
    assert result["oracle"] == pytest.approx({"cost": (20 * 0.001 + 10 * 0.02) / 30,
                                              "quality": 1.0})
    # the learner sends easy prompts to "cheap" and hard ones up: it beats the singles
    assert result["aiq"] > result["singles_aiq"]
    assert result["cost_to_reach"]["100%"] < 0.02
    weak = evaluate(lab_router("always-weak", {}, CONFIG), plan, two_model=False)
    assert weak["curve"] == [pytest.approx({"cost": 0.001, "quality": 20 / 30, "param": 0.0})]
    strong = evaluate(lab_router("always-strong", {}, CONFIG), plan, two_model=False)
    assert strong["curve"][0]["cost"] == pytest.approx(0.02)
    ladder = evaluate(lab_router("random", {"seed": 3}, CONFIG), plan, two_model=False)
    assert "score ladder" in ladder["policy"] and len(ladder["curve"]) > 2


def test_two_model_fixed_routers_are_points() -> None:
    plan = kfold_plan(two_model_table(_two_table()), 4)
    strong = evaluate(lab_router("always-strong", {}, CONFIG), plan, two_model=True)
    assert strong["curve"] == [{"strong_share": 1.0, "quality": strong["strong"]["quality"]}]
    assert strong["apgr"] is None and strong["pgr"] == pytest.approx(1.0)


def test_router_lookup_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown router 'nope'.*always-weak.*heuristic"):
        lab_router("nope", {}, CONFIG)
    with pytest.raises(ArtifactError, match="not found"):
        lab_router("missing/model.npz", {}, CONFIG)
    with pytest.raises(ConfigError, match="unknown options"):
        lab_router("random", {"sed": 1}, CONFIG)


def test_two_model_table_roles_and_unknown_rows() -> None:
    table = _many_table()
    q = table.quality.copy()
    q[0, 2] = np.nan
    shaped = two_model_table(OutcomeTable(table.prompts, table.models, q, table.cost),
                             "cheap", "dear")
    assert shaped.models == ("cheap", "dear") and len(shaped) == 29
    assert "dropped 1 prompts" in shaped.notes[-1]
    with pytest.raises(DataError, match="exactly two models"):
        two_model_table(table)
    with pytest.raises(DataError, match="not in the data"):
        two_model_table(table, "cheap", "gpt-9")


def test_calibrate_share_and_cost_cap() -> None:
    plan = kfold_plan(two_model_table(_two_table()), 5)
    found = calibrate(lab_router(LEARNER, {}, CONFIG), plan, strong_share=0.25)
    assert found["strong_share"] == pytest.approx(0.25) and found["quality"] == 1.0
    assert found["pgr"] == pytest.approx((1.0 - 0.75) / (0.9 - 0.75))
    assert 0.5 < found["threshold"] <= 1.0
    table = _many_table()
    costed = kfold_plan(two_model_table(table, "cheap", "dear"), 3)
    capped = calibrate(lab_router(LEARNER, {}, CONFIG), costed, max_cost=0.008)
    assert capped["cost_per_request"] <= 0.008
    assert capped["strong_share"] == pytest.approx(10 / 30)  # the hard third fits in the cap
    with pytest.raises(DataError, match="fixed choices"):
        calibrate(lab_router("always-weak", {}, CONFIG), plan, strong_share=0.3)


def test_write_threshold_merges_and_validates(tmp_path: Path) -> None:
    file = tmp_path / "pointsman.yaml"
    file.write_text("router:\n  candidates: [gpt-4o-mini, gpt-4.1]\n  max_fallbacks: 1\n"
                    "heuristic:\n  base: 20\n", encoding="utf-8")
    write_threshold(file, 0.4321, "heuristic", None, "gpt-4.1", "gpt-4o-mini")
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    assert data["router"] == {"candidates": ["gpt-4o-mini", "gpt-4.1"], "max_fallbacks": 1,
                              "threshold": 0.4321, "scorer": "heuristic", "mode": "threshold",
                              "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini"}
    assert data["heuristic"] == {"base": 20}
    assert load_config(file).router.threshold == 0.4321
    fresh = tmp_path / "fresh.yaml"
    with pytest.raises(ConfigError, match=r"not written.*strong_model"):
        write_threshold(fresh, 0.5, "heuristic")
    assert not fresh.exists() and list(tmp_path.iterdir()) == [file]


def test_shadow_replay_compares_strong_share_and_cost(tmp_path: Path) -> None:
    lines = []
    for prompt in ["hi", "thanks!", "Prove that there are infinitely many primes, rigorously."]:
        lines.append(json.dumps({
            "outcome": "ok", "model": "claude-opus-4-5", "cost_usd": 0.03,
            "decision": {"model": "claude-opus-4-5", "estimated_cost_usd": 0.03},
            "messages": [{"role": "user", "content": prompt}]}))
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "cheap.yaml"
    cfg.write_text("router:\n  candidates: [gpt-4o-mini, gpt-4.1]\n  mode: threshold\n"
                   "  strong_model: gpt-4.1\n  weak_model: gpt-4o-mini\n  threshold: 0.5\n",
                   encoding="utf-8")
    result = shadow_replay(logged_requests(log), Router(load_config(cfg)))
    assert result["n_requests"] == 3
    assert result["logged"]["strong_share"] == 0.0  # opus is not this config's strong model
    assert result["logged"]["estimated_cost_usd"] == pytest.approx(0.09)
    assert result["shadow"]["models"].get("gpt-4o-mini", 0) >= 2
    assert result["change"]["estimated_cost_usd"] < 0 and result["agreement"] == 0.0


class StorableRecorder(RecordingLearner):
    """The recording learner, storable as an artifact (models and mean costs kept)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.name = STORABLE
        self.options = dict(options)
        self.mean_cost = np.zeros(0)

    def fit(self, table: OutcomeTable) -> None:
        super().fit(table)
        self.mean_cost = np.zeros(len(table.models)) if table.cost is None else np.nanmean(
            table.cost, axis=0)

    def export_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"models": list(self.models)}, {"mean_cost": self.mean_cost}

    def import_state(self, state: Mapping[str, Any], arrays: Mapping[str, Any]) -> None:
        self.models = tuple(state["models"])
        self.mean_cost = np.asarray(arrays["mean_cost"], dtype=np.float64)


STORABLE = f"storable-{uuid.uuid4().hex[:8]}"
learners.register(STORABLE, StorableRecorder)


def test_artifact_router_is_loaded_by_path_and_aligned_by_model_name(tmp_path: Path) -> None:
    from pointsman.artifacts import save_learner

    learner = StorableRecorder({})
    learner.fit(_many_table())
    path = save_learner(learner, tmp_path / "router.npz")
    RecordingLearner.fits.clear()
    table = _many_table()
    reordered = OutcomeTable(table.prompts, ("dear", "cheap", "mid"),
                             table.quality[:, [2, 0, 1]],
                             None if table.cost is None else table.cost[:, [2, 0, 1]])
    plan = kfold_plan(reordered, 3)
    result = evaluate(lab_router(str(path), {}, CONFIG), plan, two_model=False)
    assert RecordingLearner.fits == []  # an artifact is never refitted
    direct = evaluate(lab_router(STORABLE, {}, CONFIG), kfold_plan(table, 3), two_model=False)
    assert result["aiq"] == pytest.approx(direct["aiq"])
    two = evaluate(lab_router(str(path), {}, CONFIG),
                   kfold_plan(two_model_table(table, "cheap", "dear"), 3), two_model=True)
    assert two["auc"] == pytest.approx(1.0)


def test_runner_train_test_and_router_options(tmp_path: Path) -> None:
    from pointsman.errors import InputError
    from pointsman.evaluation.runner import DataSpec, parse_options, prepare, run

    for name, rows in (("train", range(20)), ("test", range(20, 32))):
        lines = ["prompt,a,b"] + [f"{'hard' if i % 4 == 0 else 'easy'} {i},{i % 4 != 0},True"
                                  for i in rows]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = DataSpec("routellm", train=str(tmp_path / "train.csv"),
                    test=str(tmp_path / "test.csv"))
    plan, two = prepare(spec)
    assert two and plan.name.startswith("train/test split (20 train, 12 test")
    assert plan.parts[0].test.models == ("a", "b")
    results = run(spec, ["random", LEARNER], parse_options(["random:seed=4"],
                                                           ["random", LEARNER]), CONFIG)
    assert [r["n_test"] for r in results] == [12, 12] and results[1]["auc"] == 1.0
    assert parse_options(["k=3", "knn:metric=cosine"], ["knn", "mf"]) == {
        "knn": {"k": 3, "metric": "cosine"}, "mf": {"k": 3}}
    with pytest.raises(InputError, match="not among"):
        parse_options(["x:k=1"], ["knn"])
    with pytest.raises(InputError, match="both --train and --test"):
        prepare(DataSpec("routellm", train=str(tmp_path / "train.csv")))
    with pytest.raises(InputError, match="both --weak and --strong"):
        prepare(DataSpec("routellm", data=str(tmp_path), weak="a"))
