"""The lab on the shared benchmark data, against the figures in ../shared/data/README.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pointsman.config import load_config
from pointsman.evaluation import metrics as tm
from pointsman.evaluation.lab import evaluate, kfold_plan, two_model_table
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.pareto import singles
from pointsman.evaluation.routers import lab_router


def test_mmlu_reference_figures(shared_data: Path) -> None:
    table = two_model_table(load_table(shared_data / "routellm" / "mmlu", "routellm"))
    assert len(table) == 14_037
    assert table.models == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
    weak_q, strong_q = table.quality[:, 0], table.quality[:, 1]
    assert round(100 * float(np.mean(weak_q)), 2) == 68.09
    assert round(100 * float(np.mean(strong_q)), 2) == 80.59
    assert round(100 * tm.oracle_point(weak_q, strong_q)[1], 2) == 85.87
    assert len(set(table.groups)) == 57


def test_heuristic_on_mmlu_five_folds(shared_data: Path) -> None:
    table = two_model_table(load_table(shared_data / "routellm" / "mmlu", "routellm"))
    result = evaluate(lab_router("heuristic", {}, load_config()), kfold_plan(table, 5),
                      two_model=True)
    print(f"\nheuristic on MMLU: ROC AUC {result['auc']:.4f} (only-strong-right), "
          f"APGR {result['apgr']:.4f}, CPT(50%) {result['cpt50']:.4f}")
    assert result["n_test"] == 14_037
    assert result["oracle"]["quality"] == pytest.approx(0.8587, abs=5e-5)
    assert result["auc"] is not None and 0.0 < result["auc"] < 1.0
    assert result["cpt50"] is not None and result["cpt80"] is not None


def test_routerbench_reference_figures(shared_data: Path) -> None:
    table = load_table(shared_data / "routerbench", "routerbench")
    assert len(table) == 2_225 and len(table.models) == 11
    assert table.cost is not None
    cost, quality = singles(table.quality, table.cost)
    expected = {"gpt-4-1106-preview": (0.880, 0.00504), "zero-one-ai/Yi-34B-Chat": (0.771, 0.00033),
                "mistralai/mixtral-8x7b-chat": (0.739, 0.00025),
                "mistralai/mistral-7b-chat": (0.581, 0.00008)}
    for model, (q, c) in expected.items():
        j = table.column(model)
        assert round(float(quality[j]), 3) == q, model
        assert round(float(cost[j]), 5) == c, model
