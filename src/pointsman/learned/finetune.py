"""Fine-tuned encoder router: all-MiniLM-L6-v2 trained end to end on outcomes.

A frozen embedding only carries what the pre-trained encoder happened to find worth
encoding; fine-tuning moves it towards what predicts a model's success. The network is
the encoder, mean pooling and one linear head per model (``P(model j answers well)``; with
two models that is the two-head form ``P(weak right)``, ``P(strong right)`` whose
difference is the routing score, :func:`~pointsman.learning.strong_win_score`), trained with
binary cross-entropy on the known cells, AdamW and a one-cycle schedule.

Training needs torch (the optional ``finetune`` extra; CUDA when present), see
:mod:`pointsman.learned.finetune_torch`. Inference does not: the fine-tuned weights run
through the numpy forward pass of :mod:`pointsman.embeddings.bert`, with an LRU cache of
pooled vectors per text. The artifact stores every weight matrix as int8 with one float32
scale per row (about 23 MB for MiniLM), dequantised at load.

Options: ``epochs`` (3), ``max_tokens`` (256), ``batch_size`` (64), ``learning_rate``
(4e-5), ``weight_decay`` (0.01), ``seed`` (0), ``device`` (``auto``: CUDA when present,
``cpu``, ``cuda``), ``focus`` (``question``: strip shared prefixes, see
:mod:`pointsman.learned.focus`; ``full``), ``cache_size`` (4096 texts). The quick
protocol is ``epochs=1 max_tokens=128``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.artifacts import Arrays, require
from pointsman.embeddings.base import Encoder, Matrix, empty_matrix
from pointsman.embeddings.bert import (
    BertConfig,
    Weights,
    forward,
    pad,
    pool,
    weights_from_tensors,
)
from pointsman.embeddings.cache import CachedEncoder
from pointsman.errors import ConfigError, DataError
from pointsman.learned.base import DEFAULT_FOCUS, table_facts
from pointsman.learned.focus import MODES, TextFocus
from pointsman.learned.options import Options
from pointsman.learning import FloatArray, OutcomeTable

KNOWN = {"epochs", "max_tokens", "batch_size", "learning_rate", "weight_decay", "seed",
         "device", "focus", "cache_size"}
INSTALL_HINT = "pip install 'pointsman[finetune]' (torch==2.13.0)"
BASE_MODEL = "all-MiniLM-L6-v2"


class FineTuneLearner:
    """See the module docstring."""

    name = "finetune"

    def __init__(self, options: Mapping[str, Any]) -> None:
        opts = Options("router finetune", options, KNOWN)
        self.options: dict[str, Any] = dict(options)
        self.epochs = opts.integer("epochs", 3)
        self.max_tokens = opts.integer("max_tokens", 256, low=8)
        self.batch_size = opts.integer("batch_size", 64)
        self.learning_rate = opts.number("learning_rate", 4e-5, low=1e-8, high=1.0)
        self.weight_decay = opts.number("weight_decay", 0.01, low=0.0)
        self.seed = opts.integer("seed", 0, low=0)
        self.device = opts.choice("device", "auto", ("auto", "cpu", "cuda"))
        self.focus_mode = opts.choice("focus", DEFAULT_FOCUS, MODES)
        self.cache_size = opts.integer("cache_size", 4096)
        if self.max_tokens > 512:
            raise ConfigError("router finetune: option 'max_tokens' must be at most 512")
        self.encoder = f"finetuned:{BASE_MODEL}:{self.max_tokens}"
        self.models: tuple[str, ...] = ()
        self.prior: FloatArray = np.zeros(0)
        self.mean_cost: FloatArray = np.zeros(0)
        self.text_focus = TextFocus()
        self.tensors: dict[str, npt.NDArray[np.float32]] = {}
        self.head_w: FloatArray = np.zeros((0, 0))
        self.head_b: FloatArray = np.zeros(0)
        self._pooled: CachedEncoder | None = None

    # -- Learner ------------------------------------------------------------------------
    def fit(self, table: OutcomeTable) -> None:
        if len(table) == 0:
            raise DataError("router finetune: cannot fit on an empty outcome table")
        try:
            from pointsman.learned.finetune_torch import (
                TorchPooledEncoder,
                TrainSettings,
                cuda_in_use,
                train_encoder,
            )
        except ImportError:
            raise ConfigError(f"router finetune: training needs torch; {INSTALL_HINT}") from None
        self.models, self.prior, self.mean_cost, self.text_focus = table_facts(
            self.name, table, self.focus_mode)
        settings = TrainSettings(self.epochs, self.max_tokens, self.batch_size,
                                 self.learning_rate, self.weight_decay, self.seed, self.device)
        tensors, self.head_w, self.head_b = train_encoder(
            self.text_focus.apply(table.prompts), table.quality, self.prior, settings)
        # trained on CUDA: this process predicts there too (a k-fold run predicts thousands)
        self._install(tensors, TorchPooledEncoder if cuda_in_use(self.device) else None)

    def predict_quality(self, prompts: Sequence[str]) -> FloatArray:
        if self._pooled is None:
            raise DataError("router finetune is not fitted")
        if not prompts:
            return np.zeros((0, len(self.models)))
        pooled = self._pooled.encode(self.text_focus.apply(prompts)).astype(np.float64)
        logits = pooled @ self.head_w.T + self.head_b
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def _install(self, tensors: Mapping[str, npt.NDArray[Any]],
                 on_gpu: Callable[[dict[str, npt.NDArray[np.float32]], int, str], Encoder]
                 | None = None) -> None:
        """The weights and the encoder that pools with them: the numpy pass, or ``on_gpu``
        (the torch one, on the training device)."""
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        inner = (PooledEncoder(self.tensors, self.max_tokens) if on_gpu is None
                 else on_gpu(self.tensors, self.max_tokens, self.device))
        self._pooled = CachedEncoder(inner, self.cache_size)

    # -- artifacts ----------------------------------------------------------------------
    def export_state(self) -> tuple[dict[str, Any], Arrays]:
        arrays: Arrays = {"prior": self.prior, "mean_cost": self.mean_cost,
                          "head_w": self.head_w, "head_b": self.head_b}
        for name, value in self.tensors.items():
            arrays |= quantise(name, value)
        state = {"models": list(self.models), "focus": self.text_focus.to_state(),
                 "tensors": sorted(self.tensors), "base_model": BASE_MODEL}
        return state, arrays

    def import_state(self, state: Mapping[str, Any],
                     arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        models, names = state["models"], state["tensors"]
        if not isinstance(models, list) or not isinstance(names, list):
            raise ValueError("state.models and state.tensors must be lists")
        self.models = tuple(str(m) for m in models)
        self.prior = require(arrays, "prior", 1)
        self.mean_cost = require(arrays, "mean_cost", 1)
        self.head_w = require(arrays, "head_w", 2)
        self.head_b = require(arrays, "head_b", 1)
        if self.head_w.shape[0] != len(models) or self.head_b.shape != (len(models),):
            raise ValueError("the heads do not match the number of models")
        self.text_focus = TextFocus.from_state(state.get("focus"))
        self._install({str(n): dequantise(str(n), arrays) for n in names})


def quantise(name: str, value: npt.NDArray[Any]) -> Arrays:
    """A matrix as int8 rows with one float32 scale each; vectors stay float32."""
    if value.ndim != 2:
        return {f"f:{name}": value.astype(np.float32)}
    scale = np.abs(value).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(value / scale[:, None]), -127, 127).astype(np.int8)
    return {f"q:{name}": q, f"s:{name}": scale}


def dequantise(name: str, arrays: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
    if f"f:{name}" in arrays:
        return np.asarray(arrays[f"f:{name}"], dtype=np.float32)
    q, scale = arrays[f"q:{name}"], arrays[f"s:{name}"]
    if q.dtype != np.int8 or q.ndim != 2 or scale.shape != (q.shape[0],):
        raise ValueError(f"tensor {name!r} is not an int8 matrix with one scale per row")
    return np.asarray(q.astype(np.float32) * scale.astype(np.float32)[:, None])


class PooledEncoder:
    """The fine-tuned encoder's mean-pooled (not normalised) last hidden states, in numpy:
    the heads were trained on exactly these vectors."""

    def __init__(self, tensors: Mapping[str, npt.NDArray[np.float32]], max_tokens: int) -> None:
        from pointsman.embeddings.loader import packaged_model_dir
        from pointsman.embeddings.tokenizer_file import load_tokenizer

        folder = packaged_model_dir()
        self.config = BertConfig.from_folder(folder)
        self.weights: Weights = weights_from_tensors(tensors, self.config, "artifact")
        self.tokenizer = load_tokenizer(folder, max_tokens)
        self.dim = self.config.hidden
        self.name = f"finetuned:{BASE_MODEL}:{max_tokens}"
        self.batch_size = 32

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return empty_matrix(self.dim)
        rows = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            ids, mask = pad([rows[i] for i in chunk])
            out[chunk] = pool(forward(self.weights, self.config, ids, mask), mask, "mean")
        return out
