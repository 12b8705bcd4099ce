"""Does the fine-tuned router's artifact predict what the trained network predicts?

    .venv/bin/python benchmarks/finetune_check.py --data ../shared/data/routellm/mmlu \
        --format routellm --out mmlu-ft.npz [--router-option device=cuda] [--sample 300]

Trains ``finetune`` on all of ``--data`` (torch; CUDA when present), predicts ``--sample``
prompts in the training process (float weights; on CUDA through torch), writes the
artifact (int8 per row), loads it back and predicts the same prompts through the numpy
forward pass that ``route`` and ``serve`` use. Prints both predictions' agreement: the
largest and mean absolute difference of P(model right), the rank correlation of the
routing score (last model minus first), and how often the two would route alike at the
median score. Also prints training and prediction times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pointsman.artifacts import load_learner, save_learner
from pointsman.evaluation.loaders import load_table
from pointsman.learned.finetune import FineTuneLearner


def options(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--format", default="routellm")
    parser.add_argument("--out", required=True)
    parser.add_argument("--router-option", action="append", default=[])
    parser.add_argument("--sample", type=int, default=300)
    args = parser.parse_args()
    table = load_table(args.data, args.format)
    learner = FineTuneLearner(options(args.router_option))
    start = time.perf_counter()
    learner.fit(table)
    print(f"trained on {len(table)} prompts in {time.perf_counter() - start:.1f} s")
    prompts = list(np.random.default_rng(0).choice(table.prompts, args.sample, replace=False))
    trained = learner.predict_quality(prompts)
    path = save_learner(learner, args.out, {"data": args.data, "protocol": "all rows"})
    start = time.perf_counter()
    stored = load_learner(path).predict_quality(prompts)
    took = (time.perf_counter() - start) * 1000 / len(prompts)
    print(f"artifact {path} ({path.stat().st_size / 2**20:.1f} MiB): numpy {took:.1f} ms/prompt")
    diff = np.abs(trained - stored)
    a, b = trained[:, -1] - trained[:, 0], stored[:, -1] - stored[:, 0]
    rho = float(np.corrcoef(ranks(a), ranks(b))[0, 1])
    alike = float(np.mean((a > np.median(a)) == (b > np.median(a))))
    print(f"P(right): max |diff| {diff.max():.4f}, mean {diff.mean():.5f}; "
          f"score rank correlation {rho:.4f}; same route at the median {alike:.1%}")


if __name__ == "__main__":
    main()
