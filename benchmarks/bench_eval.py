"""Time and peak memory to evaluate routers on all of MMLU (14,037 prompts) with 5 folds.

Run: .venv/bin/python benchmarks/bench_eval.py [--learner NAME] [--option k=v ...]
Pin to one core with: taskset -c 0 .venv/bin/python benchmarks/bench_eval.py

Measures the heuristic always, and a registered learner (``--learner``; default: the first
registered learner, with its options). Memory is the process's maximum resident set size
(``ru_maxrss``) before and after the run; ``--trace`` adds the Python heap peak
(tracemalloc, which slows the run, so the time printed then includes its overhead).
Loading the data is timed separately.
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


def measure(name: str, options: dict[str, object], folds: int, trace: bool) -> None:
    start = time.perf_counter()
    table = two_model_table(load_table(DATA, "routellm"))
    loaded = time.perf_counter() - start
    plan = kfold_plan(table, folds)
    router = lab_router(name, options, load_config())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    result = evaluate(router, plan, two_model=True)
    seconds = time.perf_counter() - start
    heap = ""
    if trace:
        heap = f"; Python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB (traced)"
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name:>10}: {seconds:7.2f} s for {len(table)} prompts x {folds} folds "
          f"(load {loaded:.2f} s); max RSS {rss:.1f} MiB (was {rss_before:.1f} before the "
          f"run){heap}; APGR {result['apgr']:.4f}, AUC {result['auc']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--learner", default=None, help="a registered learner; 'none' to skip")
    parser.add_argument("--option", action="append", default=[], help="learner option k=v")
    parser.add_argument("--trace", action="store_true",
                        help="also trace the Python heap peak (tracemalloc; slows the run)")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"benchmark data not found at {DATA}")
    measure("heuristic", {}, args.folds, args.trace)
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
        measure(learner, options, args.folds, args.trace)
    else:
        print("no learner measured (none registered, or --learner none)")


if __name__ == "__main__":
    main()
