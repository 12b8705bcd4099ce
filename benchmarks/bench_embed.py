"""Embedding encoder figures: single-prompt latency (cold and cached), batch throughput, and
agreement of each cheap variant with the full all-MiniLM-L6-v2 model on real MMLU prompts.

    .venv/bin/python benchmarks/bench_embed.py                 # latency + throughput
    .venv/bin/python benchmarks/bench_embed.py --agreement 300 # plus quality vs the full model

BLAS is pinned to one thread (environment set before numpy is imported). The MMLU prompts
come from ../shared/data/routellm/mmlu/responses (a synthetic text is used if it is absent).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402  (after the thread settings)

from pointsman.embeddings import CachedEncoder, Encoder, load_encoder  # noqa: E402
from pointsman.errors import ConfigError  # noqa: E402

MMLU = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm" / "mmlu" / "responses"
VARIANTS = ["hashing", "minilm-static", "minilm:64", "minilm:128", "minilm"]
PROMPT_TOKENS = 500


def mmlu_prompts(limit: int) -> list[str]:
    """Up to ``limit`` prompts, spread evenly over the subject files (deterministic)."""
    if not MMLU.is_dir():
        return [f"Question {i}: explain the proof of theorem {i} in detail." for i in range(limit)]
    files = sorted(MMLU.glob("*.csv"))
    per_file = max(1, -(-limit // len(files)))
    out: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        out.extend(row["prompt"] for row in rows[:: max(1, len(rows) // per_file)][:per_file])
    return out[:limit]


def long_prompt(tokens: int) -> str:
    """A real-text prompt of about ``tokens`` WordPiece tokens (MMLU questions joined)."""
    from pointsman.embeddings import packaged_model_dir
    from pointsman.embeddings.tokenizer_file import load_tokenizer

    tokenizer = load_tokenizer(packaged_model_dir(), None)
    text = "\n\n".join(mmlu_prompts(60))
    ids = tokenizer.encode(text, add_special_tokens=False).ids[:tokens]
    return str(tokenizer.decode(ids))


def timings(encoder: Encoder, text: str, repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``encode([text])``."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode([text])
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def latency_report(variants: list[str], repeats: int) -> None:
    text = long_prompt(PROMPT_TOKENS)
    batch = mmlu_prompts(64)
    print(f"single prompt of {PROMPT_TOKENS} tokens, 1 BLAS thread; batch = 64 MMLU prompts")
    print(f"{'variant':<15}{'load s':>8}{'cold p50':>10}{'cold p95':>10}"
          f"{'cached p50':>12}{'cached p95':>12}{'batch/s':>10}")
    for spec in variants:
        start = time.perf_counter()
        try:
            inner = load_encoder(spec, cache_size=0)
        except ConfigError as exc:
            print(f"{spec:<15} unavailable: {exc}")
            continue
        load_s = time.perf_counter() - start
        fast = spec in ("hashing", "minilm-static")
        inner.encode([text])  # warm-up
        cold = timings(inner, text, repeats * (10 if fast else 1))
        cached = CachedEncoder(inner, 16)
        cached.encode([text])
        hot = timings(cached, text, repeats * 10)
        start = time.perf_counter()
        inner.encode(batch)
        rate = len(batch) / (time.perf_counter() - start)
        print(f"{spec:<15}{load_s:>8.2f}{cold[0]:>10.3f}{cold[1]:>10.3f}"
              f"{hot[0]:>12.4f}{hot[1]:>12.4f}{rate:>10.0f}")
    print("(times in ms; the machine is shared, so figures are upper bounds)")


def agreement_report(variants: list[str], count: int) -> None:
    prompts = mmlu_prompts(count)
    reference = load_encoder("minilm", cache_size=0).encode(prompts)
    ref_sims = reference @ reference.T
    upper = np.triu_indices(len(prompts), 1)
    print(f"\nagreement with full minilm (256 tokens) on {len(prompts)} MMLU prompts")
    print(f"{'variant':<15}{'cos mean':>10}{'cos p5':>10}{'sim corr':>10}{'kNN@10':>9}")
    for spec in variants:
        if spec == "minilm":
            continue
        vectors = load_encoder(spec, cache_size=0).encode(prompts)
        same_space = vectors.shape[1] == reference.shape[1] and spec != "hashing"
        cos = np.sum(vectors * reference, axis=1) if same_space else None
        sims = vectors @ vectors.T
        corr = float(np.corrcoef(sims[upper], ref_sims[upper])[0, 1])
        knn = knn_overlap(sims, ref_sims, 10)
        cos_mean = f"{cos.mean():.4f}" if cos is not None else "n/a"
        cos_p5 = f"{np.percentile(cos, 5):.4f}" if cos is not None else "n/a"
        print(f"{spec:<15}{cos_mean:>10}{cos_p5:>10}{corr:>10.4f}{knn:>9.3f}")
    print("cos: per-prompt cosine to the full model's vector; sim corr: Pearson correlation of "
          "all pairwise similarities; kNN@10: mean overlap of the 10 nearest neighbours")


def knn_overlap(sims: np.ndarray, ref_sims: np.ndarray, k: int) -> float:
    a, b = sims.copy(), ref_sims.copy()
    np.fill_diagonal(a, -np.inf)
    np.fill_diagonal(b, -np.inf)
    top_a = np.argsort(-a, axis=1)[:, :k]
    top_b = np.argsort(-b, axis=1)[:, :k]
    shared = [len(set(x) & set(y)) for x, y in zip(top_a.tolist(), top_b.tolist(), strict=True)]
    return float(np.mean(shared)) / k


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--agreement", type=int, default=0, help="number of MMLU prompts")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    latency_report(variants, args.repeats)
    if args.agreement:
        agreement_report(variants, args.agreement)


if __name__ == "__main__":
    main(sys.argv[1:])
