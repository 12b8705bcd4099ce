"""The hashing encoder: dependency-free, deterministic, L2-normalised."""

from __future__ import annotations

import numpy as np
import pytest

from pointsman.embeddings import Encoder, HashingEncoder, load_encoder
from pointsman.errors import ConfigError

TEXTS = [
    "What is the capital of France?",
    "Which city is the capital of France?",
    "Write a quicksort in Rust with generics.",
    "",
    "   ",
    "Résumé naïve 東京",
]


def test_rows_are_unit_float32_vectors() -> None:
    vectors = HashingEncoder(256).encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 256)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_text_same_vector_across_instances() -> None:
    first = HashingEncoder().encode(TEXTS)
    second = HashingEncoder().encode(list(reversed(TEXTS)))[::-1]
    np.testing.assert_array_equal(first, second)


def test_paraphrase_is_closer_than_unrelated_text() -> None:
    vectors = HashingEncoder().encode(TEXTS[:3])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_empty_and_blank_texts_share_one_unit_vector() -> None:
    vectors = HashingEncoder().encode(["", "  \n "])
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-6)


def test_no_texts_gives_an_empty_matrix() -> None:
    assert HashingEncoder(64).encode([]).shape == (0, 64)


def test_spec_strings_choose_dimension_and_satisfy_protocol() -> None:
    encoder = load_encoder("hashing:128", cache_size=0)
    assert isinstance(encoder, Encoder)
    assert encoder.dim == 128
    assert encoder.encode(["x"]).shape == (1, 128)
    assert load_encoder("hashing").dim == 512


@pytest.mark.parametrize("spec", ["hashing:4", "hashing:abc", "no-such-encoder", "/no/such/dir"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        load_encoder(spec)
