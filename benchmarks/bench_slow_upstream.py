"""Behind a slow upstream: the gateway's throughput as a share of calling the stub directly.

Run: .venv/bin/python benchmarks/bench_slow_upstream.py [--runs 5] [--delay-ms 50]
     [--concurrency 64] [--duration 4]

The processes of ``bench_gateway.py`` (the stub with ``--delay-ms`` on core 1, one
``pointsman serve`` worker pinned to core 0 with the SQLite request log, wrk on core 1),
then per run and mode (plain, 20-token stream) the direct call and the gateway one after
the other at the same concurrency; prints each run's requests/s and the medians of the
gateway-to-direct ratio. Target (issue 19): >= 95% for both at 50 ms and c=64.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import free_port, gateway_config, run_load, start_gateway, start_stub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        stub_port, gw_port = free_port(), free_port()
        stub = start_stub(stub_port, args.delay_ms)
        gateway, _, _ = start_gateway(gateway_config(tmp, stub_port), gw_port)
        try:
            shares: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.runs):
                for stream in (False, True):
                    direct = run_load(f"http://127.0.0.1:{stub_port}/v1", "gpt-4o-mini",
                                      args.concurrency, args.duration, stream, tmp)
                    via = run_load(f"http://127.0.0.1:{gw_port}/v1", "auto",
                                   args.concurrency, args.duration, stream, tmp)
                    shares[stream].append(via["rps"] / direct["rps"])
                    print(f"run {i + 1} {'stream' if stream else 'plain '}: direct "
                          f"{direct['rps']:.0f}/s, gateway {via['rps']:.0f}/s = "
                          f"{via['rps'] / direct['rps'] * 100:.1f}%", flush=True)
        finally:
            gateway.stop()
            stub.stop()
    for stream in (False, True):
        print(f"median {'stream' if stream else 'plain '}: "
              f"{statistics.median(shares[stream]) * 100:.1f}% of direct over {args.runs} runs "
              f"(delay {args.delay_ms:g} ms, c={args.concurrency})")


if __name__ == "__main__":
    main()
