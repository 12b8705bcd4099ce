"""The type-confusion fuzzer (:mod:`pointsman.testing.fuzz`) against the real gateway (with
the uvicorn settings ``pointsman serve`` uses) in front of the upstream stub, all three
upstream wires: ``python benchmarks/fuzz_gateway.py --cases 10000 [--seed 0]``. Prints the
status counts and every finding (a 5xx or a dropped connection); exits 1 on any."""

from __future__ import annotations

import argparse
import sys
import time

from pointsman.cli.serve import uvicorn_config
from pointsman.gateway.app import create_app
from pointsman.testing import fuzz
from pointsman.testing.upstream import UpstreamStub

sys.path.insert(0, "tests")
from gateway_harness import running


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with UpstreamStub() as stub:
        cfg = fuzz.gateway_config(stub.url, stub.base_url)
        app = create_app(cfg)
        with running(app, uvicorn_config(app, cfg.gateway, "error")) as url:
            grid = len(fuzz.grid(list(fuzz.WIRES)))
            started = time.perf_counter()
            report = fuzz.run(url, fuzz.KEY, fuzz.cases(list(fuzz.WIRES), args.cases,
                                                        args.seed))
            took = time.perf_counter() - started
    print(f"grid: {grid} (door, model, field path, wrong value) cases; "
          f"sent {report.sent} in {took:.1f} s")
    print(report.summary())
    for finding in report.findings:
        print("FINDING", finding[:500])
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
