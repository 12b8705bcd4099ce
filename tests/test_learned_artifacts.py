"""Artifact round trips and every way an artifact can be wrong."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pointsman.artifacts import FORMAT_VERSION, META_KEY, load_learner, read_artifact, save_learner
from pointsman.errors import ArtifactError
from pointsman.learning import FloatArray, OutcomeTable
from pointsman.registry import learners

PROMPTS = ("prove a hard theorem", "hello friend", "integrate this function", "good morning")
QUALITY = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, np.nan]])


def fitted(name: str) -> object:
    learner = learners.get(name)({"encoder": "hashing"})
    table = OutcomeTable(PROMPTS, ("weak", "strong"), QUALITY,
                         cost=np.array([[1.0, 9.0]] * 4))
    learner.fit(table)
    return learner


@pytest.mark.parametrize("name", ["knn", "logreg", "mf", "ensemble"])
def test_round_trip_predicts_the_same(tmp_path: Path, name: str) -> None:
    learner = fitted(name)
    path = save_learner(learner, tmp_path / "router", {"data_source": "synthetic"})  # type: ignore[arg-type]
    assert path.name == "router.npz"
    artifact = read_artifact(path)
    assert artifact.name == name
    assert artifact.metadata["data_source"] == "synthetic"
    assert artifact.metadata["created"] and artifact.metadata["pointsman_version"]
    probe = ["prove another theorem", "hello again"]
    expected = learner.predict_quality(probe)  # type: ignore[attr-defined]
    np.testing.assert_allclose(artifact.learner.predict_quality(probe), expected, atol=2e-3)
    assert list(artifact.learner.mean_cost) == [1.0, 9.0]  # type: ignore[attr-defined]


def rewrite(path: Path, header_change: dict[str, object] | None = None,
            drop: str | None = None) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays[META_KEY].tobytes())
    header.update(header_change or {})
    arrays[META_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    if drop:
        del arrays[drop]
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(("change", "drop", "message"), [
    ({"format_version": FORMAT_VERSION + 1}, None, "format version 2 is not supported"),
    ({"format": "something-else"}, None, "not a pointsman router artifact"),
    ({"learner": "no-such-router"}, None, "unknown learner 'no-such-router'"),
    ({"options": {"k": "x"}}, None, "cannot rebuild learner"),
    (None, "vectors", "missing array 'vectors'"),
    ({"state": {"models": ["just-one"]}}, None, "do not match"),
])
def test_wrong_artifacts_are_clear_errors(tmp_path: Path, change: dict[str, object] | None,
                                          drop: str | None, message: str) -> None:
    path = save_learner(fitted("knn"), tmp_path / "a.npz")  # type: ignore[arg-type]
    rewrite(path, change, drop)
    with pytest.raises(ArtifactError, match=message):
        load_learner(path)


def test_corrupt_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_learner(tmp_path / "nope.npz")
    with pytest.raises(ArtifactError, match="not a file"):
        load_learner(tmp_path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not an archive")
    with pytest.raises(ArtifactError, match=r"not an \.npz archive"):
        load_learner(garbage)
    good = save_learner(fitted("logreg"), tmp_path / "good.npz")  # type: ignore[arg-type]
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ArtifactError, match="not a readable router artifact"):
        load_learner(truncated)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    with pytest.raises(ArtifactError, match="no header"):
        load_learner(plain)
    bad_json = tmp_path / "badjson.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **{META_KEY: np.frombuffer(b"{not json", dtype=np.uint8)})  # type: ignore[arg-type]
    bad_json.write_bytes(buffer.getvalue())
    with pytest.raises(ArtifactError, match="header is corrupt"):
        load_learner(bad_json)
    assert zipfile.is_zipfile(good)


def test_a_learner_without_state_cannot_be_saved(tmp_path: Path) -> None:
    class Plain:
        name = "plain"

        def fit(self, table: OutcomeTable) -> None: ...

        def predict_quality(self, prompts: object) -> FloatArray:
            return np.zeros((0, 0))

    with pytest.raises(ArtifactError, match="cannot be saved"):
        save_learner(Plain(), tmp_path / "x.npz")
