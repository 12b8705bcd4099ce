"""Trained-router artifacts: one versioned ``.npz`` file, no pickle.

An artifact holds a fitted :class:`~pointsman.learning.Learner` so that ``pointsman train``
can write it and ``serve``, ``route`` and ``eval`` can load it by path. Layout (a NumPy
``.npz`` archive, read with ``allow_pickle=False``):

* ``__pointsman__`` — UTF-8 JSON as a uint8 array::

      {"format": "pointsman-router", "format_version": 1,
       "learner": NAME, "options": {...}, "state": {...},
       "metadata": {"created": ISO-8601, "pointsman_version": ..., "data_source": ...,
                    "protocol": ..., "metrics": {...}, "encoder": ..., ...},
       "arrays": [names of the arrays below]}

* one numeric array per fitted weight matrix, named by the learner.

A learner is storable when it implements :class:`StorableLearner`: ``options`` (the
factory options that rebuild it, JSON-compatible), ``export_state()`` and
``import_state(state, arrays)``. Loading rebuilds the learner through the ``learners``
registry, so plugins can ship storable learners too.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pointsman.errors import ArtifactError, ConfigError
from pointsman.learning import FloatArray, Learner

FORMAT = "pointsman-router"
FORMAT_VERSION = 1
META_KEY = "__pointsman__"

Arrays = dict[str, npt.NDArray[Any]]


@runtime_checkable
class StorableLearner(Learner, Protocol):
    """A learner that can be written to and rebuilt from an artifact."""

    options: Mapping[str, Any]

    def export_state(self) -> tuple[dict[str, Any], Arrays]:
        """JSON-compatible scalars and the fitted numeric arrays."""
        ...

    def import_state(self, state: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]
                     ) -> None:
        """Restore what :meth:`export_state` returned (raise ``ArtifactError`` when wrong)."""
        ...


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact: the ready learner and the metadata it was saved with."""

    learner: Learner
    name: str
    options: Mapping[str, Any]
    metadata: Mapping[str, Any]
    path: Path


def pointsman_version() -> str:
    try:
        return version("pointsman")
    except PackageNotFoundError:
        return "unknown"


def save_learner(learner: Learner, path: str | Path,
                 metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a fitted learner to ``path`` (``.npz`` is appended when missing)."""
    if not isinstance(learner, StorableLearner):
        raise ArtifactError(f"learner {learner.name!r} cannot be saved as an artifact "
                            "(it does not implement export_state/import_state)")
    state, arrays = learner.export_state()
    reserved = [k for k in arrays if k == META_KEY]
    if reserved:
        raise ArtifactError(f"learner {learner.name!r} uses the reserved array name {META_KEY}")
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "pointsman_version": pointsman_version(),
        **dict(metadata or {}),
    }
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "learner": learner.name,
        "options": dict(learner.options), "state": state, "metadata": meta,
        "arrays": sorted(arrays),
    }
    try:
        blob = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact metadata is not JSON-serialisable: {exc}") from None
    out = Path(path).expanduser()
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {META_KEY: np.frombuffer(blob, dtype=np.uint8), **arrays}
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as handle:
        np.savez_compressed(handle, **payload)  # type: ignore[arg-type]
    tmp.replace(out)
    return out


def read_artifact(path: str | Path) -> Artifact:
    """Load an artifact; every problem is an :class:`ArtifactError` naming the file."""
    file = Path(path).expanduser()
    header, arrays = _read(file)
    name = header["learner"]
    options = header.get("options") or {}
    if not isinstance(name, str) or not isinstance(options, dict):
        raise ArtifactError(f"{file}: artifact header has no valid learner name/options")
    from pointsman.registry import learners

    try:
        learner = learners.get(name)(options)
    except ConfigError as exc:
        raise ArtifactError(f"{file}: cannot rebuild learner {name!r}: {exc.message}") from None
    if not isinstance(learner, StorableLearner):
        raise ArtifactError(f"{file}: learner {name!r} cannot be restored from an artifact")
    try:
        learner.import_state(header.get("state") or {}, arrays)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ArtifactError(f"{file}: artifact for {name!r} is inconsistent: {exc}") from None
    metadata = header.get("metadata") or {}
    return Artifact(learner, name, options, metadata if isinstance(metadata, dict) else {}, file)


def load_learner(path: str | Path) -> Learner:
    """The fitted learner stored at ``path``."""
    return read_artifact(path).learner


def _read(file: Path) -> tuple[dict[str, Any], Arrays]:
    if not file.exists():
        raise ArtifactError(f"{file}: router artifact not found")
    if not file.is_file():
        raise ArtifactError(f"{file}: router artifact is not a file")
    try:
        data = file.read_bytes()
        if not data.startswith(b"PK"):
            raise ArtifactError(f"{file}: not a pointsman router artifact (not an .npz archive)")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if META_KEY not in npz.files:
                raise ArtifactError(f"{file}: not a pointsman router artifact (no header)")
            raw = npz[META_KEY]
            arrays = {k: npz[k] for k in npz.files if k != META_KEY}
    except ArtifactError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{file}: not a readable router artifact ({exc})") from None
    return _header(file, raw), arrays


def _header(file: Path, raw: npt.NDArray[Any]) -> dict[str, Any]:
    try:
        header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: artifact header is corrupt ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{file}: not a pointsman router artifact")
    got = header.get("format_version")
    if got != FORMAT_VERSION:
        raise ArtifactError(f"{file}: artifact format version {got!r} is not supported "
                            f"(this pointsman reads version {FORMAT_VERSION}); retrain it "
                            "with `pointsman train`")
    if "learner" not in header:
        raise ArtifactError(f"{file}: artifact header names no learner")
    return header


def require(arrays: Mapping[str, npt.NDArray[Any]], name: str, ndim: int) -> FloatArray:
    """A float array from an artifact, checked for presence and rank."""
    if name not in arrays:
        raise KeyError(f"missing array {name!r}")
    arr = np.asarray(arrays[name], dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"array {name!r} has {arr.ndim} dimensions, expected {ndim}")
    return arr
