"""An LRU cache in front of any encoder: a repeated text costs one dictionary look-up."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from pointsman.embeddings.base import Encoder, Matrix, empty_matrix
from pointsman.errors import ConfigError


class CachedEncoder:
    """Wraps an encoder; vectors are kept per text (keyed by a BLAKE2b hash), up to ``size``.

    Thread-safe. Only the texts not in the cache are sent to the wrapped encoder, in one batch.
    """

    def __init__(self, inner: Encoder, size: int = 4096) -> None:
        if size < 1:
            raise ConfigError(f"embedding cache size must be at least 1, got {size}")
        self.inner = inner
        self.size = size
        self.name = inner.name
        self.dim = inner.dim
        self.hits = 0
        self.misses = 0
        self._rows: OrderedDict[bytes, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return empty_matrix(self.dim)
        keys = [_key(text) for text in texts]
        found = self._lookup(keys)
        missing = {k: t for k, t, row in zip(keys, texts, found, strict=True) if row is None}
        if missing:
            fresh = self.inner.encode(list(missing.values()))
            computed = {k: row.copy() for k, row in zip(missing, fresh, strict=True)}
            self._store(computed)
            pairs = zip(keys, found, strict=True)
            found = [computed[k] if row is None else row for k, row in pairs]
        return np.stack([row for row in found if row is not None]).astype(np.float32, copy=False)

    def __len__(self) -> int:
        return len(self._rows)

    def _lookup(self, keys: list[bytes]) -> list[Matrix | None]:
        out: list[Matrix | None] = []
        with self._lock:
            for key in keys:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                    self.hits += 1
                else:
                    self.misses += 1
                out.append(row)
        return out

    def _store(self, computed: dict[bytes, Matrix]) -> None:
        with self._lock:
            for key, row in computed.items():
                row.setflags(write=False)
                self._rows[key] = row
                self._rows.move_to_end(key)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
