"""The Protocol every text encoder implements, and shared helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors: ``encode(texts)`` has shape (n, dim)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Matrix: ...


def l2_normalise(rows: npt.NDArray[np.floating]) -> Matrix:
    """Rows scaled to unit length (float32). An all-zero row stays zero."""
    out = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.asarray(out / norms, dtype=np.float32)


def empty_matrix(dim: int) -> Matrix:
    """The result of encoding no texts."""
    return np.zeros((0, dim), dtype=np.float32)
