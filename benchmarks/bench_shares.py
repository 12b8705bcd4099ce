"""What tier-share targets add to one decision: reading the live threshold (the score
window's source, as the gateway awaits it), deciding with it, and recording the score
into the rolling window (a full window of 2,000: every add evicts one and invalidates
the cached thresholds, the worst case).

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_shares.py [--iterations N]
Pin to one core with: taskset -c 0 ...
Target: the added time is <= 20 µs per decision (p50).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Coroutine
from typing import Any

from pointsman import LiveState, Router, RouteRequest
from pointsman.config import default_config_data, parse_config
from pointsman.shares.config import TargetsConfig
from pointsman.shares.source import ScoreQuantiles
from pointsman.signals.base import Signal

REQUEST = RouteRequest.from_prompt("Analyze the trade-offs of batching versus async I/O.")


def run(coro: Coroutine[Any, Any, LiveState]) -> LiveState:
    """Drive a coroutine that never suspends (the memory source), as ``await`` does."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: LiveState = done.value
        return result
    raise RuntimeError("the source suspended")


def router(targets: dict[str, Any] | None) -> Router:
    data = default_config_data()
    data["router"] = {**data["router"], "mode": "threshold",
                      "candidates": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1"],
                      "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini",
                      "targets": targets}
    return Router(parse_config(data))


def timed(plain: Router, shared: Router, source: ScoreQuantiles, signals: list[Signal]
          ) -> tuple[list[float], list[float]]:
    """Per-decision µs without and with targets, interleaved (the same noise on both)."""
    base, with_targets = [], []
    empty = LiveState()
    gc.disable()
    for signal in signals:
        start = time.perf_counter_ns()
        plain.decide(REQUEST, empty, signal=signal)
        middle = time.perf_counter_ns()
        state = run(source.contribute(REQUEST, empty))
        decision = shared.decide(REQUEST, state, signal=signal)
        source.add(decision.scores["complexity"] / 100.0)
        end = time.perf_counter_ns()
        base.append((middle - start) / 1000.0)
        with_targets.append((end - middle) / 1000.0)
    gc.enable()
    return base, with_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=2000)
    args = parser.parse_args()
    targets = {"shares": {"premium": 0.05, "mid": 0.20}, "window": args.window}
    source = ScoreQuantiles(TargetsConfig(**targets))
    rng = random.Random(1)
    for _ in range(args.window):  # a full window: every add evicts
        source.add(rng.random())
    signals = [Signal(score=rng.random() * 100) for _ in range(args.iterations)]
    plain, shared = router(None), router(targets)
    timed(plain, shared, source, signals[:2000])  # warm up
    base, with_targets = timed(plain, shared, source, signals)
    added = [w - b for b, w in zip(base, with_targets, strict=True)]
    p50 = statistics.median
    print(f"decision without targets  p50 {p50(base):7.2f} µs")
    print(f"decision with targets     p50 {p50(with_targets):7.2f} µs  "
          f"(threshold read + decide + window update, window {args.window})")
    print(f"added by targets          p50 {p50(added):7.2f} µs  "
          f"(difference of the p50s {p50(with_targets) - p50(base):.2f} µs; target <= 20)")


if __name__ == "__main__":
    main()
