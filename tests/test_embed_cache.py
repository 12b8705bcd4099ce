"""CachedEncoder: repeated texts are served from a bounded LRU cache."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pointsman.embeddings import CachedEncoder, Encoder, HashingEncoder, load_encoder
from pointsman.embeddings.base import Matrix


class CountingEncoder:
    """A real encoder (hashing) that records every batch it is asked to encode."""

    def __init__(self) -> None:
        self.inner = HashingEncoder(64)
        self.name = "counting"
        self.dim = 64
        self.batches: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Matrix:
        self.batches.append(list(texts))
        return self.inner.encode(texts)


def test_cached_rows_equal_uncached_rows() -> None:
    counting = CountingEncoder()
    cached = CachedEncoder(counting, 8)
    assert isinstance(cached, Encoder)
    texts = ["a b c", "d e f", "a b c"]
    np.testing.assert_array_equal(cached.encode(texts), counting.inner.encode(texts))


def test_only_missing_texts_reach_the_inner_encoder() -> None:
    counting = CountingEncoder()
    cached = CachedEncoder(counting, 8)
    cached.encode(["one", "two"])
    cached.encode(["two", "three", "one", "three"])
    assert counting.batches == [["one", "two"], ["three"]]
    assert (cached.hits, cached.misses) == (2, 4)


def test_least_recently_used_text_is_evicted() -> None:
    counting = CountingEncoder()
    cached = CachedEncoder(counting, 2)
    cached.encode(["one"])
    cached.encode(["two"])
    cached.encode(["one"])  # "two" is now the least recently used
    cached.encode(["three"])
    assert len(cached) == 2
    cached.encode(["one"])
    cached.encode(["two"])
    assert counting.batches[-1] == ["two"]
    assert ["one"] not in counting.batches[3:]


def test_load_encoder_shares_one_cache_per_spec() -> None:
    first = load_encoder("hashing:96", cache_size=10)
    second = load_encoder("hashing:96", cache_size=10)
    assert first is second
    assert isinstance(first, CachedEncoder)
    first.encode(["shared prompt"])
    hits = first.hits
    second.encode(["shared prompt"])
    assert first.hits == hits + 1


def test_returned_rows_are_not_the_cached_storage() -> None:
    cached = CachedEncoder(CountingEncoder(), 4)
    first = cached.encode(["same"])
    first[0, :] = 0.0
    assert np.linalg.norm(cached.encode(["same"])[0]) > 0.99
