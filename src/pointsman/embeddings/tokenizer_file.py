"""Loading a model folder's ``tokenizer.json`` with the settings the encoders need."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from pointsman.errors import ConfigError


def load_tokenizer(folder: Path, max_tokens: int | None) -> Tokenizer:
    """The folder's tokenizer, truncating to ``max_tokens`` (None: no truncation), no padding.

    The file's own padding and truncation settings (all-MiniLM ships fixed padding to 128)
    are replaced: encoders pad each batch to its longest row themselves.
    """
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: no tokenizer.json (a fast-tokenizer file is required)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception subclasses
        raise ConfigError(f"{path} cannot be loaded: {exc}") from None
    tokenizer.no_padding()
    if max_tokens is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer
