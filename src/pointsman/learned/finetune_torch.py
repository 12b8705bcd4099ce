"""Training half of the fine-tuned router (imports torch: the optional ``finetune`` extra).

The encoder is the packaged all-MiniLM-L6-v2 written functionally over its checkpoint
tensors (the same post-LayerNorm BERT as :func:`pointsman.embeddings.bert.forward`, so the
trained tensors load straight into the numpy forward pass), mean pooling over the
attention mask, and a linear head per model initialised at the models' mean success
(BERT's small random weights, bias = logit(prior)) so training starts near the prior;
dropout 0.1 on the hidden states and attention while training, as BERT was trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from pointsman.embeddings.bert import BertConfig
from pointsman.learning import FloatArray

Tensors = dict[str, npt.NDArray[np.float32]]
DROPOUT = 0.1  # BERT's hidden and attention dropout, during training only


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    max_tokens: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    seed: int
    device: str


class RouterNet(torch.nn.Module):
    """Encoder tensors by checkpoint name, mean pooling, one logit per model."""

    def __init__(self, tensors: Tensors, config: BertConfig, models: int,
                 prior: FloatArray) -> None:
        super().__init__()
        self.config = config
        self.names = sorted(tensors)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.params = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(tensors[n].copy())) for n in self.names])
        self.head = torch.nn.Linear(config.hidden, models)
        with torch.no_grad():
            # BERT's initialiser (normal, std 0.02): a zero head would pass no gradient to
            # the encoder, which then barely moves at the encoder's learning rate
            self.head.weight.normal_(0.0, 0.02)
            p = np.clip(prior, 0.02, 0.98)
            self.head.bias.copy_(torch.from_numpy(np.log(p / (1.0 - p)).astype(np.float32)))

    def p(self, name: str) -> torch.Tensor:
        param: torch.Tensor = self.params[self.index[name]]
        return param

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(ids, mask)
        return self.head(pooled)  # type: ignore[no-any-return]

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (F.embedding(ids, self.p("embeddings.word_embeddings.weight"))
             + self.p("embeddings.position_embeddings.weight")[: ids.shape[1]]
             + self.p("embeddings.token_type_embeddings.weight")[0])
        x = self._drop(self._norm(x, "embeddings.LayerNorm"))
        keep = mask[:, None, None, :].bool()
        for i in range(self.config.layers):
            x = self._layer(x, keep, f"encoder.layer.{i}")
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def _layer(self, x: torch.Tensor, keep: torch.Tensor, p: str) -> torch.Tensor:
        batch, length, hidden = x.shape
        heads = self.config.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, heads, hidden // heads).transpose(1, 2)

        q, k, v = (split(self._dense(x, f"{p}.attention.self.{n}"))
                   for n in ("query", "key", "value"))
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keep, dropout_p=DROPOUT if self.training else 0.0)
        context = context.transpose(1, 2).reshape(batch, length, hidden)
        x = self._norm(x + self._drop(self._dense(context, f"{p}.attention.output.dense")),
                       f"{p}.attention.output.LayerNorm")
        inner = F.gelu(self._dense(x, f"{p}.intermediate.dense"))
        return self._norm(x + self._drop(self._dense(inner, f"{p}.output.dense")),
                          f"{p}.output.LayerNorm")

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, DROPOUT, self.training)

    def _dense(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.p(f"{name}.weight"), self.p(f"{name}.bias"))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (self.config.hidden,), self.p(f"{name}.weight"),
                            self.p(f"{name}.bias"), self.config.eps)

    def export(self) -> tuple[Tensors, FloatArray, FloatArray]:
        tensors = {n: self.p(n).detach().cpu().float().numpy() for n in self.names}
        return (tensors, self.head.weight.detach().cpu().double().numpy(),
                self.head.bias.detach().cpu().double().numpy())


def base_tensors() -> tuple[Tensors, BertConfig]:
    """The packaged model's encoder tensors (float, ``bert.`` prefix removed, no pooler)."""
    from safetensors.numpy import load_file

    from pointsman.embeddings.loader import packaged_model_dir

    folder = packaged_model_dir()
    raw = load_file(str(folder / "model.safetensors"))
    tensors: Tensors = {}
    for name, value in raw.items():
        name = name.removeprefix("bert.")
        if name.startswith(("embeddings.", "encoder.")) and value.dtype.kind == "f":
            tensors[name] = np.asarray(value, dtype=np.float32)
    return tensors, BertConfig.from_folder(folder)


def train_encoder(texts: Sequence[str], quality: FloatArray, prior: FloatArray,
                  settings: TrainSettings) -> tuple[Tensors, FloatArray, FloatArray]:
    """Fine-tune end to end; returns the encoder tensors and the heads (m × hidden, m)."""
    net = _train(texts, quality, prior, settings)
    return net.export()


def _train(texts: Sequence[str], quality: FloatArray, prior: FloatArray,
           settings: TrainSettings) -> RouterNet:
    from pointsman.embeddings.loader import packaged_model_dir
    from pointsman.embeddings.tokenizer_file import load_tokenizer

    torch.manual_seed(settings.seed)
    device = _device(settings.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products on the GPU
    tensors, config = base_tensors()
    net = RouterNet(tensors, config, quality.shape[1], prior).to(device)
    tokenizer = load_tokenizer(packaged_model_dir(), settings.max_tokens)
    rows = [e.ids for e in tokenizer.encode_batch(list(texts))]
    target = torch.from_numpy(np.nan_to_num(quality, nan=0.0).astype(np.float32))
    known = torch.from_numpy((~np.isnan(quality)).astype(np.float32))
    steps = max(1, math.ceil(len(rows) / settings.batch_size)) * settings.epochs
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.learning_rate,
                                                   total_steps=steps)
    generator = torch.Generator().manual_seed(settings.seed)
    net.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(rows), generator=generator)
        for batch in torch.split(order, settings.batch_size):
            ids, mask = _batch([rows[i] for i in batch.tolist()], device)
            logits = net(ids, mask)
            weight = known[batch].to(device)
            loss = F.binary_cross_entropy_with_logits(
                logits, target[batch].to(device), weight=weight, reduction="sum")
            loss = loss / weight.sum().clamp(min=1.0)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
    return net


class TorchPooledEncoder:
    """The fine-tuned encoder's pooled vectors computed by torch on the training device.

    Used in the process that trained the weights when that device is CUDA (a k-fold
    evaluation predicts thousands of prompts; the numpy pass would dominate the run). The
    vectors are those of :class:`~pointsman.learned.finetune.PooledEncoder` from the same
    float weights; an artifact always loads into the numpy pass.
    """

    def __init__(self, tensors: Tensors, max_tokens: int, device: str) -> None:
        from pointsman.embeddings.loader import packaged_model_dir
        from pointsman.embeddings.tokenizer_file import load_tokenizer

        folder = packaged_model_dir()
        config = BertConfig.from_folder(folder)
        self.device = _device(device)
        self.net = RouterNet(tensors, config, 1, np.array([0.5])).to(self.device).eval()
        self.tokenizer = load_tokenizer(folder, max_tokens)
        self.dim = config.hidden
        self.name = f"finetuned-torch:{max_tokens}"
        self.batch_size = 256

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                ids, mask = _batch([rows[i] for i in chunk], self.device)
                out[chunk] = self.net.pooled(ids, mask).float().cpu().numpy()
        return out


def cuda_in_use(choice: str) -> bool:
    """Whether training with this ``device`` option runs on CUDA."""
    return _device(choice).type == "cuda"


def _batch(rows: Sequence[Sequence[int]], device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    from pointsman.embeddings.bert import pad

    ids, mask = pad(rows)
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def _device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def describe() -> dict[str, Any]:
    """Which torch and device training uses (recorded in the artifact's metadata)."""
    return {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
