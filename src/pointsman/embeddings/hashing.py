"""A dependency-free hashed bag-of-words and character n-gram encoder.

Cheap (well under a millisecond for a long prompt), deterministic across processes and
machines, and a legitimate fallback when no neural model is installed. Features:

* lower-cased word unigrams and bigrams (weight 1 each);
* character 3-, 4- and 5-grams of the whitespace-collapsed lower-cased text (weight 0.5).

Each feature is hashed to a bucket and a sign (the "hashing trick"); counts are damped with
``log1p`` and the row is L2-normalised. An empty text maps to one fixed unit vector.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pointsman.embeddings.base import Matrix, empty_matrix, l2_normalise
from pointsman.errors import ConfigError

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_CHAR_NGRAMS = (3, 4, 5)
_CHAR_WEIGHT = 0.5
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MASK32 = np.uint64(0xFFFFFFFF)


class HashingEncoder:
    """Hashed word and character n-gram features, L2-normalised."""

    def __init__(self, dim: int = 512) -> None:
        if dim < 8:
            raise ConfigError(f"hashing encoder: dim must be at least 8, got {dim}")
        self.dim = dim
        self.name = f"hashing:{dim}"

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return empty_matrix(self.dim)
        rows = np.stack([self._one(text) for text in texts])
        return l2_normalise(rows)

    def _one(self, text: str) -> npt.NDArray[np.float64]:
        lowered = _SPACES.sub(" ", text.lower()).strip()
        if not lowered:
            lowered = "\x00empty"
        counts = np.zeros(self.dim, dtype=np.float64)
        self._add_words(lowered, counts)
        self._add_char_ngrams(lowered, counts)
        return np.sign(counts) * np.log1p(np.abs(counts))

    def _add_words(self, lowered: str, counts: npt.NDArray[np.float64]) -> None:
        words = _WORD.findall(lowered)
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        if not features:
            return
        hashes = np.array([zlib.crc32(f.encode()) for f in features], dtype=np.uint64)
        self._scatter(_mix(hashes), 1.0, counts)

    def _add_char_ngrams(self, lowered: str, counts: npt.NDArray[np.float64]) -> None:
        codes = np.frombuffer(f" {lowered} ".encode(), dtype=np.uint8).astype(np.uint64)
        for n in _CHAR_NGRAMS:
            if codes.size < n:
                continue
            hashes = np.full(codes.size - n + 1, np.uint64(n), dtype=np.uint64)
            for j in range(n):
                hashes = (hashes * np.uint64(1_000_003) + codes[j : codes.size - n + 1 + j])
                hashes &= _MASK32
            self._scatter(_mix(hashes), _CHAR_WEIGHT, counts)

    def _scatter(
        self, mixed: npt.NDArray[np.uint64], weight: float, counts: npt.NDArray[np.float64]
    ) -> None:
        buckets = (mixed % np.uint64(self.dim)).astype(np.int64)
        signs = np.where((mixed >> np.uint64(40)) & np.uint64(1), weight, -weight)
        counts += np.bincount(buckets, weights=signs, minlength=self.dim)


def _mix(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Spread 32-bit hashes over 64 bits (Fibonacci hashing plus an xor-shift)."""
    with np.errstate(over="ignore"):
        mixed = hashes * _MIX
    return mixed ^ (mixed >> np.uint64(29))
