"""Decision time of the learned routers through ``Router.decide`` on one core.

    taskset -c 0 .venv/bin/python benchmarks/bench_learned.py
    taskset -c 0 .venv/bin/python benchmarks/bench_learned.py --encoder minilm:128  # full model

For each router (kNN, logistic regression) an artifact of realistic size (``--rows`` training
prompts, random unit vectors: the cost does not depend on their content) is written to a
temporary folder and loaded through the config (``router.scorer`` + ``scorer_options``).
Figures: p50/p95 of ``Router.decide`` for ~500-token prompts, cold (each prompt new: the
encoder runs) and cached (the same prompts again: the embedding cache answers).
BLAS is pinned to one thread before numpy is imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from pointsman.artifacts import save_learner  # noqa: E402
from pointsman.config import _merge, default_config_data, parse_config  # noqa: E402
from pointsman.embeddings import load_encoder  # noqa: E402
from pointsman.learned.classifier import LogisticLearner  # noqa: E402
from pointsman.learned.features import CHEAP_FEATURES  # noqa: E402
from pointsman.learned.knn import KnnLearner  # noqa: E402
from pointsman.router import Router  # noqa: E402
from pointsman.tokens import estimate_message_tokens  # noqa: E402
from pointsman.types import Message, RouteRequest  # noqa: E402

TEXT = ("the quick brown fox jumps over lazy dogs while analysing distributed systems "
        "latency budgets proofs integrals refactoring python functions and contracts")
WORDS = tuple(TEXT.split())


def prompt(i: int, tokens: int = 500) -> str:
    rng = np.random.default_rng(i)
    words = rng.choice(WORDS, size=int(tokens * 0.54))
    return f"Request {i}: " + " ".join(words)


def artifacts(folder: Path, encoder: str, rows: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    dim = load_encoder(encoder).dim
    vectors = rng.normal(size=(rows, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    common = {"models": ["weak", "strong"]}
    base = {"prior": np.array([0.7, 0.8]), "mean_cost": np.array([0.0002, 0.005])}
    knn = KnnLearner({"encoder": encoder})
    knn.import_state(common, {**base, "vectors": vectors,
                              "quality": rng.integers(0, 2, (rows, 2)).astype(float)})
    features = dim + len(CHEAP_FEATURES)
    logreg = LogisticLearner({"encoder": encoder})
    logreg.import_state(common, {**base, "coef": rng.normal(0, 0.1, (2, features)),
                                 "intercept": np.zeros(2),
                                 "feature_mean": np.zeros(len(CHEAP_FEATURES)),
                                 "feature_std": np.ones(len(CHEAP_FEATURES))})
    return {"knn": save_learner(knn, folder / "knn.npz"),
            "logreg": save_learner(logreg, folder / "logreg.npz")}


def router(kind: str, path: Path) -> Router:
    data = _merge(default_config_data(), {"router": {
        "scorer": kind, "scorer_options": {"artifact": str(path)}, "mode": "threshold",
        "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini"}})
    return Router(parse_config(data, "bench"))


def timed(r: Router, requests: list[RouteRequest]) -> list[float]:
    out = []
    for request in requests:
        start = time.perf_counter()
        r.decide(request)
        out.append((time.perf_counter() - start) * 1000)
    return out


def figures(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"  {label:<7} p50 {statistics.median(ms):7.3f} ms   p95 {p95:7.3f} ms   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-static")
    parser.add_argument("--rows", type=int, default=15000)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    print(f"encoder {args.encoder}, {args.rows} training rows")
    with tempfile.TemporaryDirectory() as tmp:
        for index, (kind, path) in enumerate(
                artifacts(Path(tmp), args.encoder, args.rows).items()):
            # Fresh prompts per router: the embedding cache is shared within the process.
            requests = [RouteRequest((Message("user", prompt(index * 100_000 + i)),))
                        for i in range(args.n)]
            tokens = statistics.mean(estimate_message_tokens(r.messages) for r in requests)
            r = router(kind, path)
            timed(r, [RouteRequest.from_prompt("warm-up " + prompt(10**6))])
            print(f"{kind} (prompts ≈ {tokens:.0f} tokens):")
            figures("cold", timed(r, requests))
            figures("cached", timed(r, requests))


if __name__ == "__main__":
    main()
