"""``pointsman train`` then ``pointsman route --config`` with the artifact, as a user runs them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pointsman", *args], capture_output=True,
                          text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    with (folder / "mmlu_synthetic.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "weak-model", "strong-model"])
        for i in range(40):
            if i % 2:
                writer.writerow([f"prove the theorem on prime gaps number {i}", "False", "True"])
            else:
                writer.writerow([f"say hello to my good friend number {i}", "True", "True"])
    out = folder / "knn-router.npz"
    proc = run("train", "--data", str(folder), "--format", "routellm", "--router", "knn",
               "--router-option", "encoder=hashing", "--router-option", "k=5", "--out", str(out),
               "--calibrate-folds", "2")
    assert proc.returncode == 0, proc.stderr
    assert "40 prompts × 2 models" in proc.stdout
    assert "held_out_apgr" in proc.stdout
    return out


def config(tmp_path: Path, artifact: Path) -> Path:
    path = tmp_path / "pointsman.yaml"
    path.write_text(
        "router:\n  scorer: knn\n"
        f"  scorer_options: {{artifact: '{artifact}'}}\n"
        "  mode: threshold\n  strong_model: gpt-4.1\n  weak_model: gpt-4o-mini\n"
        "  threshold: 0.6\n")
    return path


def test_train_then_route_with_the_artifact(tmp_path: Path, artifact: Path) -> None:
    cfg = config(tmp_path, artifact)
    hard = run("route", "--json", "--config", str(cfg), "prove the theorem on prime gaps 7")
    easy = run("route", "--json", "--config", str(cfg), "say hello to my good friend 8")
    assert hard.returncode == 0, hard.stderr
    hard_d, easy_d = json.loads(hard.stdout), json.loads(easy.stdout)
    assert hard_d["model"] == "gpt-4.1" and easy_d["model"] == "gpt-4o-mini"
    assert hard_d["strategy"] == "knn/threshold"
    assert hard_d["scores"]["complexity"] > 60 > easy_d["scores"]["complexity"]


def test_artifact_metadata_records_data_protocol_and_metrics(artifact: Path) -> None:
    from pointsman.artifacts import read_artifact

    meta = read_artifact(artifact).metadata
    assert meta["data_format"] == "routellm" and meta["rows"] == 40
    assert "2-fold out-of-fold" in meta["protocol"]
    assert meta["metrics"]["held_out_apgr"] == 0.75  # the best possible on this split
    assert meta["encoder"] == "hashing" and meta["pointsman_version"]


def test_bad_artifacts_and_arguments_are_one_line_exit_2(tmp_path: Path, artifact: Path) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(artifact.read_bytes()[:100])
    missing = tmp_path / "missing.npz"
    for path in (broken, missing):
        proc = run("route", "--config", str(config(tmp_path, path)), "hello")
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr
    bad = [run("train", "--data", str(tmp_path), "--format", "csv", "--router", "knn",
               "--out", str(tmp_path / "x.npz")),
           run("train", "--data", str(artifact.parent), "--format", "routellm",
               "--router", "nope", "--out", str(tmp_path / "x.npz")),
           run("train", "--data", str(artifact.parent), "--format", "routellm",
               "--router", "knn", "--router-option", "k", "--out", str(tmp_path / "x.npz"))]
    for proc in bad:
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("pointsman: error:") and proc.stderr.count("\n") == 1
