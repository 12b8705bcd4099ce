"""Time and peak memory to evaluate routers on all of MMLU (14,037 prompts) with 5 folds.

Run: .venv/bin/python benchmarks/bench_eval.py [--learner NAME] [--option k=v ...]
Pin to one core with: taskset -c 0 .venv/bin/python benchmarks/bench_eval.py

Measures the heuristic always, and a registered learner (``--learner``; default: the first
registered learner, with its options). The time is an untraced run; peak memory is the
Python heap peak (tracemalloc, in a second, traced run) and the process's maximum
resident set size (``ru_maxrss``) at the end. Loading the data is timed separately.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from pathlib import Path

from pointsman.config import load_config
from pointsman.evaluation.lab import evaluate, kfold_plan, two_model_table
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.routers import lab_router
from pointsman.registry import learners

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm" / "mmlu"


def measure(name: str, options: dict[str, object], folds: int) -> None:
    start = time.perf_counter()
    table = two_model_table(load_table(DATA, "routellm"))
    loaded = time.perf_counter() - start
    plan = kfold_plan(table, folds)
    start = time.perf_counter()
    result = evaluate(lab_router(name, options, load_config()), plan, two_model=True)
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second run for the heap peak: tracing slows Python down
    evaluate(lab_router(name, options, load_config()), plan, two_model=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name:>10}: {seconds:7.2f} s for {len(table)} prompts x {folds} folds "
          f"(load {loaded:.2f} s); Python heap peak {peak / 2**20:7.1f} MiB; max RSS "
          f"{rss:7.1f} MiB; APGR {result['apgr']:.4f}, AUC {result['auc']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--learner", default=None, help="a registered learner; 'none' to skip")
    parser.add_argument("--option", action="append", default=[], help="learner option k=v")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"benchmark data not found at {DATA}")
    measure("heuristic", {}, args.folds)
    names = learners.names()
    learner = args.learner or (names[0] if names else "none")
    if learner != "none":
        options = {}
        for pair in args.option:
            key, _, value = pair.partition("=")
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError:
                options[key] = value
        measure(learner, options, args.folds)
    else:
        print("no learner measured (none registered, or --learner none)")


if __name__ == "__main__":
    main()
