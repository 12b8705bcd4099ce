"""Decision time of the fine-tuned encoder router (``finetune``) through ``Router.decide``.

    taskset -c 0 .venv/bin/python benchmarks/bench_finetune.py                 # 128 tokens
    taskset -c 0 .venv/bin/python benchmarks/bench_finetune.py --artifact mmlu-ft.npz

Without ``--artifact`` an artifact of the real size is written from the packaged
all-MiniLM-L6-v2 weights and zero heads (the cost of a decision does not depend on the
trained values; no torch needed), at ``--max-tokens`` (default 128), int8 per row like a
trained one, and loaded through the config (``router.scorer: finetune``). Prompts are long
enough to be truncated, so every cold decision runs the full 128-token forward pass.
Figures: p50/p95 cold (a new prompt: numpy forward pass, one thread) and cached (the same
prompts again: the pooled-vector cache answers). Targets: cold p95 ≤ 30 ms, cached ≤ 2 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from pointsman.artifacts import read_artifact, save_learner  # noqa: E402
from pointsman.embeddings import packaged_model_dir  # noqa: E402
from pointsman.learned.finetune import FineTuneLearner  # noqa: E402
from pointsman.types import Message, RouteRequest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learned import figures, router, timed  # noqa: E402  (a sibling script)

TEXT = ("the quick brown fox jumps over lazy dogs while analysing distributed systems "
        "latency budgets proofs integrals refactoring python functions and contracts")
WORDS = TEXT.split()


def prompt(i: int, words: int = 200) -> str:
    rng = np.random.default_rng(i)
    return f"Request {i}: " + " ".join(rng.choice(WORDS, size=words))


def untrained_artifact(folder: Path, max_tokens: int) -> Path:
    raw = load_file(str(packaged_model_dir() / "model.safetensors"))
    learner = FineTuneLearner({"max_tokens": max_tokens, "focus": "full"})
    names = [k for k, v in raw.items() if k.startswith(("embeddings.", "encoder."))
             and v.dtype.kind == "f"]
    state = {"models": ["weak", "strong"], "tensors": names}
    arrays = {"prior": np.array([0.7, 0.8]), "mean_cost": np.array([0.0002, 0.005]),
              "head_w": np.zeros((2, 384)), "head_b": np.zeros(2)}
    for name in names:
        arrays[f"f:{name}"] = raw[name].astype(np.float32)
    learner.import_state(state, arrays)
    return save_learner(learner, folder / "finetune.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.artifact or untrained_artifact(Path(tmp), args.max_tokens)
        print(f"artifact {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        started = time.perf_counter()
        r = router("finetune", path)
        print(f"load {1000 * (time.perf_counter() - started):.0f} ms")
        timed(r, [RouteRequest.from_prompt("warm-up " + prompt(10**6))])
        requests = [RouteRequest((Message("user", prompt(i)),)) for i in range(args.n)]
        tokens = getattr(read_artifact(path).learner, "max_tokens", args.max_tokens)
        print(f"finetune, prompts truncated at {tokens} tokens:")
        figures("cold", timed(r, requests))
        figures("cached", timed(r, requests))


if __name__ == "__main__":
    main()
