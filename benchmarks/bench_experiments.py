"""What experiment arm assignment adds to a decision (p50 and p99 per call, one core):
``LiveExperiment.assign`` (BLAKE2b of the unit, the arm by cumulative share) and marking
the decision. Run: ``python benchmarks/bench_experiments.py``."""

from __future__ import annotations

import statistics
import time

from pointsman.config import load_config
from pointsman.experiments.config import ExperimentConfig
from pointsman.experiments.live import Arm, LiveExperiment
from pointsman.router import Router
from pointsman.types import RouteRequest


def main(n: int = 50_000) -> None:
    cfg = ExperimentConfig.model_validate({
        "name": "bench", "control": "A", "arms": [{"name": "A", "share": 0.5},
                                                   {"name": "B", "share": 0.5}]})
    router = Router(load_config(None))
    live = LiveExperiment(cfg, [Arm("bench", "A", router), Arm("bench", "B", router)])
    routes = [RouteRequest.from_prompt("hello", metadata={"user": f"user-{i}"})
              for i in range(1000)]
    decision = router.decide(routes[0])
    samples = []
    for i in range(n):
        route = routes[i % 1000]
        start = time.perf_counter_ns()
        arm = live.assign(route)
        if arm is not None:
            arm.mark(decision)
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    print(f"arm assignment + marking: p50 {samples[n // 2] / 1000:.2f} µs, "
          f"p99 {samples[int(n * 0.99)] / 1000:.2f} µs, mean "
          f"{statistics.fmean(samples) / 1000:.2f} µs over {n} calls")


if __name__ == "__main__":
    main()
