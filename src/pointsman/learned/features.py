"""What learned routers see of a prompt: a sentence embedding plus cheap generic features.

The cheap features are the same for any domain (no benchmark-specific words): length in
characters, words and lines, the share of digits, of upper-case letters and of symbols,
mean word length, question marks, code and maths markers. They are standardised with the
mean and spread of the training prompts (stored in the artifact).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from pointsman.embeddings import Encoder, load_encoder
from pointsman.learning import FloatArray
from pointsman.progress import progress
from pointsman.types import RouteRequest

CHEAP_FEATURES: tuple[str, ...] = (
    "log_chars", "log_words", "log_lines", "digit_share", "upper_share", "symbol_share",
    "mean_word_len", "questions", "code_markers", "math_markers",
)
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|=>|\bimport ", re.MULTILINE)
_MATH = re.compile(r"[=^√∑∫≤≥±]|\\frac|\\sqrt|\d\s*[-+*/]\s*\d")


def prompt_text(request: RouteRequest) -> str:
    """The text a learned router judges: the conversation, last user turn last."""
    if len(request.messages) == 1:
        return request.messages[0].content
    return "\n".join(m.content for m in request.messages if m.content)


def cheap_features(texts: Sequence[str]) -> FloatArray:
    """An n × len(CHEAP_FEATURES) array of raw (unstandardised) cheap features."""
    return np.array([_one(text) for text in texts], dtype=np.float64).reshape(
        len(texts), len(CHEAP_FEATURES))


def _one(text: str) -> list[float]:
    n = max(len(text), 1)
    words = text.split()
    digits = sum(ch.isdigit() for ch in text)
    upper = sum(ch.isupper() for ch in text)
    symbols = sum(not ch.isalnum() and not ch.isspace() for ch in text)
    return [
        math.log1p(len(text)), math.log1p(len(words)), math.log1p(text.count("\n")),
        digits / n, upper / n, symbols / n,
        sum(len(w) for w in words) / max(len(words), 1) / 10.0,
        min(text.count("?"), 5) / 5.0,
        min(len(_CODE.findall(text)), 10) / 10.0,
        min(len(_MATH.findall(text)), 10) / 10.0,
    ]


CLIP = 3.0


class Standardiser:
    """Column-wise (x - mean) / std with statistics from the training rows, clipped to
    ±``CLIP``: prompts unlike any training prompt (code after prose-only training) must not
    push a linear model far outside what it was fitted on."""

    def __init__(self, mean: FloatArray | None = None, std: FloatArray | None = None) -> None:
        self.mean = mean
        self.std = std

    def fit(self, rows: FloatArray) -> FloatArray:
        self.mean = rows.mean(axis=0)
        self.std = np.maximum(rows.std(axis=0), 1e-6)
        return self.apply(rows)

    def apply(self, rows: FloatArray) -> FloatArray:
        if self.mean is None or self.std is None:
            raise ValueError("the feature standardiser is not fitted")
        return np.clip((rows - self.mean) / self.std, -CLIP, CLIP).astype(np.float64)


PROGRESS_FROM = 2000  # prompts; fewer are embedded too fast to need a bar


def encode(spec: str, texts: Sequence[str], batch: int = 64) -> FloatArray:
    """Embeddings of ``texts`` (float64 rows, unit length) with the cached encoder ``spec``."""
    encoder: Encoder = load_encoder(spec)
    parts = []
    with progress(len(texts) if len(texts) >= PROGRESS_FROM else 0,
                  f"embedding {len(texts)} prompts ({spec})") as advance:
        for i in range(0, len(texts), batch):
            parts.append(encoder.encode(list(texts[i:i + batch])))
            advance(len(parts[-1]))
    if not parts:
        return np.zeros((0, encoder.dim), dtype=np.float64)
    return np.concatenate(parts).astype(np.float64)
