"""Write tests/fixtures/minilm_reference.json: reference embeddings from sentence-transformers.

Run with a throwaway venv that has torch (CPU) and sentence-transformers, never the project's:

    /tmp/refvenv/bin/python scripts/make_embed_fixture.py MODEL_DIR

MODEL_DIR is the packaged model folder (``python -c "from pointsman.embeddings import
packaged_model_dir; print(packaged_model_dir())"`` in the project venv).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

LONG = " ".join(
    f"Step {i}: the router compares the prompt against {i * 7} stored examples and "
    "records which model answered best." for i in range(40)
)
TEXTS = [
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists in O(n) time.",
    "Prove that the square root of 2 is irrational.",
    "Résumé: naïve café owners in Zürich discuss crème brûlée — 東京 too!",
    "hi",
    LONG,
]


def main() -> None:
    folder = Path(sys.argv[1])
    out = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json"
    model = SentenceTransformer(str(folder), device="cpu")
    items = []
    for max_len in (256, 128):
        model.max_seq_length = max_len
        vectors = model.encode(TEXTS, normalize_embeddings=True)
        for text, vec in zip(TEXTS, vectors, strict=True):
            if max_len == 256 or text is LONG:
                items.append({"text": text, "max_tokens": max_len,
                              "embedding": [round(float(x), 6) for x in vec]})
    data = {"model": "all-MiniLM-L6-v2", "source": "sentence-transformers", "items": items}
    out.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {len(items)} reference embeddings to {out}")


if __name__ == "__main__":
    main()
