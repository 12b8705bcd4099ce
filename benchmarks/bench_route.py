"""Decision time of heuristic + rules + weighted score on a 2,000-character prompt.

Run: .venv/bin/python benchmarks/bench_route.py [--iterations N]
Pin to one core with: taskset -c 0 .venv/bin/python benchmarks/bench_route.py
Target (issue 2): p50 <= 50 µs, p99 <= 200 µs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from pointsman import Router, RouteRequest, load_config

PROMPT = (
    "I have a Python service that reads events from Kafka, enriches them with data from "
    "PostgreSQL and writes the results to S3. Latency spikes every few minutes and the "
    "consumer lag grows. Analyze the likely root causes step by step, compare batching "
    "against async I/O for the enrichment query, and propose a design that keeps p99 "
    "latency under 200 ms. Include a short code example of the consumer loop. "
) * 5


def measure(router: Router, request: RouteRequest, iterations: int) -> list[float]:
    timings = []
    gc.disable()
    for _ in range(iterations):
        start = time.perf_counter_ns()
        router.decide(request)
        timings.append((time.perf_counter_ns() - start) / 1000.0)
    gc.enable()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    router = Router(load_config())
    prompt = PROMPT[:2000]
    request = RouteRequest.from_prompt(prompt)
    measure(router, request, 2_000)  # warm up
    timings = sorted(measure(router, request, args.iterations))
    q = statistics.quantiles(timings, n=100)
    decision = router.decide(request)
    print(f"prompt: {len(prompt)} chars; decision: {decision.model} "
          f"(complexity {decision.scores['complexity']})")
    print(f"iterations: {args.iterations}")
    print(f"decision time µs: p50 {q[49]:.1f}  p90 {q[89]:.1f}  p99 {q[98]:.1f}  "
          f"max {timings[-1]:.1f}  mean {statistics.fmean(timings):.1f}")
    scorer_timings = []
    for _ in range(args.iterations // 4):
        start = time.perf_counter_ns()
        router.scorer.score(request)
        scorer_timings.append((time.perf_counter_ns() - start) / 1000.0)
    print(f"heuristic score alone µs: p50 {statistics.median(scorer_timings):.1f}")


if __name__ == "__main__":
    main()
