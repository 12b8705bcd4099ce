"""Text embeddings on the CPU without torch.

``load_encoder(spec)`` returns an :class:`Encoder` whose ``encode(texts)`` gives an
(n, dim) float32 array of L2-normalised rows. See :mod:`pointsman.embeddings.loader` for the
spec strings (``minilm``, ``minilm:128``, ``minilm-static``, ``hashing``, a folder path).
"""

from __future__ import annotations

from pointsman.embeddings.base import Encoder, Matrix, l2_normalise
from pointsman.embeddings.cache import CachedEncoder
from pointsman.embeddings.hashing import HashingEncoder
from pointsman.embeddings.loader import INSTALL_HINT, load_encoder, packaged_model_dir

__all__ = [
    "INSTALL_HINT",
    "CachedEncoder",
    "Encoder",
    "HashingEncoder",
    "Matrix",
    "l2_normalise",
    "load_encoder",
    "packaged_model_dir",
]
