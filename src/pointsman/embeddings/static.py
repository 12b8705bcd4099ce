"""A static (model2vec-style) variant of a BERT sentence encoder: microseconds per prompt.

For every vocabulary token the full model runs ``[CLS] token [SEP]`` once, offline; the token's
row is its contextual output vector, and the mean row over the vocabulary is subtracted (the
shared component otherwise dominates every average). The table, plus one row for the empty
text, is cached as ``.npy`` under the user cache dir. A text is the L2-normalised mean of its
tokens' rows: no attention, no matrix products, so a 500-token prompt costs a tokenizer call
and a gather. Nothing is downloaded.

Measured on 342 MMLU prompts this variant agrees only loosely with the full model (see
benchmarks/bench_embed.py --agreement): it is a fast approximation, not the same encoder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pointsman.embeddings.base import Matrix, empty_matrix, l2_normalise
from pointsman.embeddings.bert import BertEncoder, forward
from pointsman.embeddings.tokenizer_file import load_tokenizer
from pointsman.errors import ConfigError
from pointsman.progress import progress

log = logging.getLogger(__name__)
TABLE_VERSION = 2
MAX_STATIC_TOKENS = 8192
BUILD_BATCH = 1024


def cache_dir() -> Path:
    """``$POINTSMAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/pointsman``, else ``~/.cache/pointsman``."""
    explicit = os.environ.get("POINTSMAN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pointsman"


def table_path(folder: Path) -> Path:
    """Where the table of ``folder``'s model is cached (keyed by the weights file's identity)."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{folder}: no model.safetensors to build a static table from")
    stat = weights.stat()
    ident = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v{TABLE_VERSION}"
    digest = hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()
    return cache_dir() / "embeddings" / f"static-{folder.name}-{digest}.npy"


def build_table(bert: BertEncoder, batch_size: int = BUILD_BATCH) -> Matrix:
    """One centred row per vocabulary id, then one unit row for the empty text."""
    cls_id, sep_id = _special_ids(bert)
    vocab = bert.tokenizer.get_vocab_size(with_added_tokens=True)
    table = np.empty((vocab + 1, bert.dim), dtype=np.float32)
    label = (f"building the static embedding table of {bert.folder.name} (one-off, cached "
             f"in {cache_dir()}; about 1-2 minutes)")
    with progress(vocab, label, announce=True) as advance:
        for start in range(0, vocab, batch_size):
            tokens = np.arange(start, min(start + batch_size, vocab), dtype=np.int64)
            ids = np.stack([np.full_like(tokens, cls_id), tokens, np.full_like(tokens, sep_id)],
                           1)
            hidden = forward(bert.weights, bert.config, ids, np.ones_like(ids))
            table[start : start + tokens.size] = hidden[:, 1, :]
            advance(int(tokens.size))
    table[:vocab] -= table[:vocab].mean(axis=0)
    empty = np.array([[cls_id, sep_id]], dtype=np.int64)
    table[vocab] = bert.encode_ids(empty, np.ones_like(empty))[0]
    return table


def _special_ids(bert: BertEncoder) -> tuple[int, int]:
    cls_id = bert.tokenizer.token_to_id("[CLS]")
    sep_id = bert.tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ConfigError(f"{bert.folder}: the tokenizer has no [CLS]/[SEP] tokens")
    return int(cls_id), int(sep_id)


class StaticEncoder:
    """Mean of per-token vectors from a precomputed table, L2-normalised."""

    def __init__(self, name: str, folder: Path, table: Matrix) -> None:
        self.name = name
        self.tokenizer = load_tokenizer(folder, MAX_STATIC_TOKENS)
        if table.ndim != 2 or table.shape[0] != self.tokenizer.get_vocab_size(True) + 1:
            raise ConfigError(f"static table for {folder} does not match its tokenizer")
        self.table = table
        self.dim = int(table.shape[1])

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return empty_matrix(self.dim)
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        empty_row = self.table.shape[0] - 1
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, enc in enumerate(encodings):
            ids = enc.ids or [empty_row]
            rows[i] = self.table[ids].mean(axis=0)
        return l2_normalise(rows)


def load_static(folder: Path, *, build: bool = True) -> StaticEncoder:
    """The static encoder of ``folder``, building and caching its table on first use."""
    path = table_path(folder)
    name = f"static:{folder.name}"
    if path.is_file():
        try:
            return StaticEncoder(name, folder, np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            log.warning("static table %s is unreadable (%s); rebuilding", path, exc)
    if not build:
        raise ConfigError(f"no static table for {folder} at {path}; build it first")
    table = build_table(BertEncoder(folder))
    _save_atomic(path, table)
    return StaticEncoder(name, folder, table)


def _save_atomic(path: Path, table: Matrix) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, table, allow_pickle=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
