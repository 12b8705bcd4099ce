"""How much slower the same work runs when it runs rarely: one routing decision back to
back, and once after each pause (the core asleep, or busy in a tight loop).

Run: taskset -c 0 .venv/bin/python benchmarks/bench_cold.py [--samples 150]

Why (issue 4): behind a 50 ms upstream at concurrency 1 the gateway's core does one
request's work every ~50 ms. If the machine loses a process's caches in that time, every
step of the request (HTTP parsing, routing, the upstream call, the answer) runs several
times slower than the back-to-back figures at delay 0 suggest; this measures that effect
on the routing decision alone, with no network and no other process of ours running.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from pointsman import Router, RouteRequest, load_config

PAUSES_MS = (0.0, 2.0, 10.0, 50.0)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def timed(work: Callable[[], object], pause: Callable[[float], None], gap_s: float,
          samples: int) -> float:
    """Median µs of ``work``, each run after ``pause(gap_s)`` (none when 0)."""
    timings = []
    gc.disable()
    try:
        for _ in range(samples):
            if gap_s:
                pause(gap_s)
            start = time.perf_counter_ns()
            work()
            timings.append((time.perf_counter_ns() - start) / 1000.0)
    finally:
        gc.enable()
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=150)
    args = parser.parse_args()
    router = Router(load_config())
    request = RouteRequest.from_prompt("What is the capital of France?")

    def work() -> object:
        return router.decide(request)

    timed(work, time.sleep, 0.0, 3000)  # warm up
    base = timed(work, time.sleep, 0.0, 3000)
    print(f"routing decision, back to back: p50 {base:.1f} µs")
    for name, pause in (("asleep", time.sleep), ("spinning", _spin)):
        for gap_ms in PAUSES_MS[1:]:
            value = timed(work, pause, gap_ms / 1000, args.samples)
            print(f"after {gap_ms:4.0f} ms {name:<8}: p50 {value:7.1f} µs ({value / base:4.1f}x)")


if __name__ == "__main__":
    main()
