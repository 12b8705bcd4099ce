"""The fine-tuned encoder router: int8 weights, numpy inference, torch-only training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pointsman.artifacts import read_artifact, save_learner
from pointsman.errors import ConfigError
from pointsman.evaluation.lab import kfold_plan
from pointsman.learned.finetune import FineTuneLearner, PooledEncoder, dequantise, quantise
from pointsman.learning import OutcomeTable
from pointsman.registry import learners, scorers

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="training the finetune router needs torch: "
    "pip install 'pointsman[finetune]' (torch==2.13.0)")
QUICK = {"epochs": 1, "max_tokens": 16, "batch_size": 8, "learning_rate": 1e-4}


def tiny_table() -> OutcomeTable:
    easy = [f"Say hello to friend number {i}." for i in range(12)]
    hard = [f"Prove that the {i}-th prime gap is bounded by a power of log p." for i in range(12)]
    quality = [[1.0, 1.0]] * len(easy) + [[0.0, 1.0]] * len(hard)
    return OutcomeTable(tuple(easy + hard), ("weak", "strong"), np.array(quality))


def test_int8_rows_round_trip_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 384)).astype(np.float32)
    arrays = quantise("w", matrix)
    assert arrays["q:w"].dtype == np.int8 and arrays["s:w"].shape == (50,)
    back = dequantise("w", arrays)
    assert np.all(np.abs(back - matrix) <= arrays["s:w"][:, None] / 2 + 1e-7)
    assert dequantise("b", quantise("b", matrix[0])).dtype == np.float32


def test_the_int8_encoder_embeds_like_the_float_one() -> None:
    from safetensors.numpy import load_file

    from pointsman.embeddings import packaged_model_dir

    raw = load_file(str(packaged_model_dir() / "model.safetensors"))
    tensors = {k: v for k, v in raw.items() if v.dtype.kind == "f"}
    rounded = {k: dequantise(k, quantise(k, v)) for k, v in tensors.items()}
    texts = ["How do I bake bread?", "Prove the Cauchy-Schwarz inequality."]
    exact, approx = (PooledEncoder(t, 64).encode(texts) for t in (tensors, rounded))
    cosine = (exact * approx).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(approx,
                                                                                       axis=1)
    assert cosine.min() > 0.995


def test_options_are_checked_and_it_is_registered_everywhere() -> None:
    assert "finetune" in learners and "finetune" in scorers
    with pytest.raises(ConfigError, match="max_tokens"):
        FineTuneLearner({"max_tokens": 1024})
    with pytest.raises(ConfigError, match="unknown options"):
        FineTuneLearner({"layers": 3})


@pytest.fixture(scope="module")
def fitted() -> FineTuneLearner:
    if not HAS_TORCH:
        pytest.skip("training the finetune router needs torch: "
                    "pip install 'pointsman[finetune]' (torch==2.13.0)")
    learner = FineTuneLearner(QUICK)
    learner.fit(tiny_table())
    return learner


@needs_torch
def test_quick_protocol_trains_and_the_artifact_predicts_the_same(
        fitted: FineTuneLearner, tmp_path: Path) -> None:
    table = tiny_table()
    predicted = fitted.predict_quality(table.prompts)
    assert predicted.shape == (24, 2) and np.all((predicted > 0) & (predicted < 1))
    path = save_learner(fitted, tmp_path / "ft.npz", {"encoder": fitted.encoder})
    assert path.stat().st_size < 30 * 2**20  # int8 rows: fits a 64 MiB carry
    loaded = read_artifact(path)
    assert loaded.name == "finetune"
    again = loaded.learner.predict_quality(table.prompts)
    np.testing.assert_allclose(again, predicted, atol=0.02)
    score = again[:, 1] - again[:, 0]
    assert score[12:].mean() > score[:12].mean()  # hard prompts lean to the strong model


@needs_torch
def test_the_lab_refits_it_per_fold_on_the_first_fold_only() -> None:
    from pointsman.config import default_config_data, parse_config
    from pointsman.evaluation.lab import evaluate
    from pointsman.evaluation.routers import lab_router

    plan = kfold_plan(tiny_table(), 4, 0, max_folds=1)
    assert len(plan.parts) == 1 and "first 1 of 4 folds" in plan.name
    router = lab_router("finetune", QUICK, parse_config(default_config_data()))
    result = evaluate(router, plan, two_model=True)
    assert result["n_test"] == 6 and 0.0 <= result["apgr"] <= 1.0


@needs_torch
def test_the_torch_pooled_encoder_matches_the_numpy_pass() -> None:
    """After training on CUDA a k-fold run predicts through torch: the same vectors."""
    from pointsman.learned.finetune_torch import TorchPooledEncoder, base_tensors

    tensors, _ = base_tensors()
    texts = ["How do I bake bread?", "Prove the Cauchy-Schwarz inequality for sums.", "hi"]
    ours = TorchPooledEncoder(tensors, 32, "cpu").encode(texts)
    numpy_pass = PooledEncoder(tensors, 32).encode(texts)
    assert ours.shape == numpy_pass.shape == (3, 384)
    cosine = (ours * numpy_pass).sum(1) / (np.linalg.norm(ours, axis=1)
                                           * np.linalg.norm(numpy_pass, axis=1))
    assert cosine.min() > 0.9999 and np.abs(ours - numpy_pass).max() < 1e-2
