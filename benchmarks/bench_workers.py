"""``pointsman serve --workers N``: throughput and CPU per request, 1 worker against N.

Run: .venv/bin/python benchmarks/bench_workers.py [--workers 1 2] [--runs 3] [--duration 4]
     [--upstream stub|canned]

Processes: the upstream stub (delay 0, 20-token streams) and ``wrk`` (one thread, c=64,
keep-alive) pinned to core 1 as in bench_gateway.py; the gateway is *not* pinned (it may
use every core, shared with the stub and wrk), with the SQLite request log on. For each
worker count, each mode (plain, stream) and each run it prints wrk's requests/s and the
gateway's CPU per request: user + sys of every gateway process (the supervisor and its
workers, their log-writer threads included), from before the load until the request log
holds every row (moving work later saves nothing). The summary gives the medians and, for
N > 1, CPU per request and throughput against one worker's. ``--upstream canned`` answers
from ``canned_upstream.py`` instead of the stub (bytes prepared at start, a stream in one
body): on a 2-core machine the stub's streams nearly fill the core it shares with wrk, and
a second worker then only competes with the stub.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import (  # a sibling script, not a package
    PYTHON,
    Proc,
    free_port,
    gateway_config,
    run_wrk,
    start_stub,
    taskset,
    wait_ready,
)


def tree_cpu(pid: int) -> float:
    """user + sys seconds of ``pid`` and its children (the workers)."""
    tck = __import__("os").sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tck
    return total


def logged_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


def wait_flushed(db: Path, expected: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while logged_rows(db) < expected and time.monotonic() < deadline:
        time.sleep(0.1)


def start(config: Path, port: int, workers: int) -> Proc:
    proc = Proc(subprocess.Popen(
        [PYTHON, "-m", "pointsman", "serve", "--config", str(config), "--port", str(port),
         "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_ready(f"http://127.0.0.1:{port}/health")
    time.sleep(1.0 if workers > 1 else 0.2)  # every worker up
    return proc


def one_run(tmp: Path, stub_port: int, workers: int, stream: bool,
            duration: float) -> tuple[float, float]:
    """(requests/s, CPU µs per request) of one fresh server."""
    run = Path(tempfile.mkdtemp(dir=tmp))
    config = gateway_config(run, stub_port)
    port = free_port()
    proc = start(config, port, workers)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        run_wrk(url, "auto", 64, 1, run, stream)  # warm up
        wait_flushed(run / "requests.db", 1)
        base_rows = logged_rows(run / "requests.db")
        before = tree_cpu(proc.popen.pid)
        result = run_wrk(url, "auto", 64, duration, run, stream)
        wait_flushed(run / "requests.db", base_rows + int(result["n"]))
        used = tree_cpu(proc.popen.pid) - before
        served = logged_rows(run / "requests.db") - base_rows
    finally:
        proc.stop()
    return result["rps"], used / max(served, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--upstream", choices=["stub", "canned"], default="stub",
                        help="canned: benchmarks/canned_upstream.py, answers prepared at "
                             "start (leaves the cores to the gateway)")
    args = parser.parse_args()
    figures: dict[tuple[int, bool], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stub_port = free_port()
        stub = start_stub(stub_port, 0) if args.upstream == "stub" else start_canned(stub_port)
        try:
            for _ in range(args.runs):  # interleaved: drift in the machine's load hits all
                for workers in args.workers:
                    for stream in (False, True):
                        rps, cpu = one_run(tmp, stub_port, workers, stream, args.duration)
                        figures.setdefault((workers, stream), []).append((rps, cpu))
                        print(f"workers {workers} {'stream' if stream else 'plain '}: "
                              f"{rps:7.0f} req/s  {cpu:6.0f} us CPU/request", flush=True)
        finally:
            stub.stop()
    summary(figures, args.workers, args.upstream)


def start_canned(port: int) -> Proc:
    """benchmarks/canned_upstream.py on core 1 (where the stub would be)."""
    proc = Proc(subprocess.Popen(
        [*taskset(1), PYTHON, str(Path(__file__).with_name("canned_upstream.py")), "--port",
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_ready(f"http://127.0.0.1:{port}/v1/models")
    return proc


def summary(figures: dict[tuple[int, bool], list[tuple[float, float]]],
            counts: list[int], upstream: str = "stub") -> None:
    print(f"\nmedians (c=64, delay 0, wrk and the {upstream} upstream on core 1, the gateway "
          "unpinned):")
    for stream in (False, True):
        base = figures.get((counts[0], stream))
        for workers in counts:
            runs = figures[(workers, stream)]
            rps = statistics.median(r for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            line = (f"  {'stream' if stream else 'plain '} workers {workers}: {rps:7.0f} req/s"
                    f"  {cpu:6.0f} us CPU/request")
            if base is not None and workers != counts[0]:
                b_rps = statistics.median(r for r, _ in base)
                b_cpu = statistics.median(c for _, c in base)
                line += f"  (x{rps / b_rps:.2f} throughput, CPU {cpu / b_cpu - 1:+.0%})"
            print(line)


if __name__ == "__main__":
    main()
