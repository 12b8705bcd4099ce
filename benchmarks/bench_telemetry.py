"""What OpenTelemetry export costs: gateway CPU per request and added latency with
``telemetry`` off and on (OTLP/HTTP to a local collector), on the Chat Completions door,
plain and streamed.

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_telemetry.py [--duration 4]
     [--rounds 3] [--base REV]

Processes as in ``bench_doors.py`` (whose measurement this reuses): the upstream stub and
``wrk`` on core 1, one ``pointsman serve`` pinned to core 0 (heuristic routing, SQLite
request log on, memory budgets). With telemetry on, every request is traced
(``sample_ratio`` 1: a request span and one attempt span) and exported in batches to a
collector process on core 1 that accepts and discards OTLP/HTTP posts; the exporter's
encoding and posting run in the gateway's batch thread, so they count in its CPU. Each row:
added p50 / p99 at c=1 (through the gateway minus straight to the stub) and CPU µs per
request at c=16; the median over ``--rounds``, the variants interleaved in each round.
``--base REV`` also runs an older commit with telemetry off (a ``git worktree``): the
reference for "figures unchanged with telemetry off".

``--micro N``: instead, the telemetry work alone, in this process: N requests' spans (the
request span with its attributes and decision, one attempt span) made and exported through
the real OTLP/HTTP exporter to the collector, process CPU time (the batch thread included)
per request; the figure a loaded machine blurs least.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from bench_doors import fmt, measure, start_pointsman, worktree
from bench_gateway import PYTHON, REPO, Proc, free_port, gateway_config, start_stub, taskset

SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


def start_sink(port: int) -> Proc:
    """The collector: takes every OTLP/HTTP post and drops it (pinned to core 1)."""
    proc = Proc(subprocess.Popen([*taskset(1), PYTHON, "-c", SINK, str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.stop()
                raise
            time.sleep(0.05)


def config_with(tmp: Path, stub_port: int, telemetry: dict[str, object] | None) -> Path:
    path = gateway_config(tmp, stub_port)
    if telemetry is not None:
        data = yaml.safe_load(path.read_text())
        data["telemetry"] = telemetry
        path = tmp / "bench-otel.yaml"
        path.write_text(yaml.safe_dump(data))
    return path


def run_variant(label: str, telemetry: dict[str, object] | None, src: Path | None,
                seconds: float, tmp: Path) -> dict[str, dict[str, float]]:
    stub_port, port = free_port(), free_port()
    stub = start_stub(stub_port, 0.0)
    out: dict[str, dict[str, float]] = {}
    try:
        proc = start_pointsman(config_with(tmp, stub_port, telemetry), port, src)
        try:
            for stream in (False, True):
                row = f"{label}{' stream' if stream else ''}"
                out[row] = measure(f"http://127.0.0.1:{port}", proc.popen.pid,
                                   f"http://127.0.0.1:{stub_port}", "chat", stream, seconds,
                                   tmp)
                print(f"  {row:28} {fmt(out[row])}", flush=True)
        finally:
            proc.stop()
    finally:
        stub.stop()
    return out


def one_round(seconds: float, tmp: Path, sink_port: int, base: str | None,
              base_src: Path | None) -> dict[str, dict[str, float]]:
    otel = {"enabled": True, "endpoint": f"http://127.0.0.1:{sink_port}/v1/traces",
            "schedule_delay_s": 1.0}
    variants: list[tuple[str, dict[str, object] | None, Path | None]] = [
        ("telemetry off", None, None), ("telemetry on", otel, None)]
    if base_src is not None:
        variants.append((f"base {base}", None, base_src))
    rows: dict[str, dict[str, float]] = {}
    for label, telemetry, src in variants:
        rows |= run_variant(label, telemetry, src, seconds, tmp)
    return rows


def summary(rows: dict[str, dict[str, float]], base: str | None) -> None:
    print("\n-- medians")
    for label, row in rows.items():
        print(f"  {label:28} {fmt(row)}")
    for suffix in ("", " stream"):
        on, off = rows[f"telemetry on{suffix}"], rows[f"telemetry off{suffix}"]
        print(f"  OTLP on{suffix}: +{on['cpu_us'] - off['cpu_us']:.0f} µs CPU per request "
              f"({on['cpu_us'] / off['cpu_us']:.2f}x), added p50 "
              f"{on['added_p50_ms'] - off['added_p50_ms']:+.2f} ms")
        if base is not None:
            ref = rows[f"base {base}{suffix}"]
            print(f"  off{suffix} vs {base}: CPU {off['cpu_us'] / ref['cpu_us']:.2f}x, "
                  f"added p50 {off['added_p50_ms'] - ref['added_p50_ms']:+.2f} ms")


def median_rows(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {label: {k: statistics.median(r[label][k] for r in rounds)
                    for k in rounds[0][label]} for label in rounds[0]}


def micro(count: int) -> None:
    from pointsman.budget.cost import Cost
    from pointsman.gateway.parse import ChatRequest
    from pointsman.state import AttemptOutcome
    from pointsman.telemetry.config import TelemetryConfig
    from pointsman.telemetry.tracing import Telemetry
    from pointsman.types import Decision, Message, RouteRequest

    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        telemetry = Telemetry(TelemetryConfig(
            enabled=True, endpoint=f"http://127.0.0.1:{sink_port}/v1/traces",
            schedule_delay_s=1.0, max_queue_size=65536))
        decision = Decision("gpt-4o-mini", ("gpt-4.1",), {"gpt-4o-mini": 0.8}, "score 0.31",
                            1e-5, "gpt-4.1", 1e-4, 12, 350, "weighted")
        cost = Cost(12, 20, 1.2e-5, True)
        outcome = AttemptOutcome("gpt-4o-mini", "gpt-4o-mini@stub", True, None, 3.0, 4.0, 12,
                                 20, 1.2e-5)
        chats = [ChatRequest({}, "auto", False, False, RouteRequest((Message("user", "hi"),)))
                 for _ in range(count)]
        started = time.process_time()
        for i, chat in enumerate(chats):
            telemetry.begin(chat, "chat", f"r{i}")
            telemetry.attempt(chat.route, outcome)
            telemetry.end(chat.route, decision, "ok", ("gpt-4o-mini",), "gpt-4o-mini", None,
                          cost, None)
        on_path = time.process_time() - started
        telemetry.shutdown()  # exports what is queued
        total = time.process_time() - started
    finally:
        sink.stop()
    print(f"{count} requests: {1e6 * on_path / count:.1f} µs CPU per request on the request "
          f"path, {1e6 * total / count:.1f} µs with the export (encoding, posting)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=None, help="also run this commit, telemetry off")
    parser.add_argument("--micro", type=int, default=0, help="the spans alone, N requests")
    args = parser.parse_args()
    if args.micro:
        micro(args.micro)
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base_src = worktree(args.base, tmp) / "src" if args.base else None
        sink_port = free_port()
        sink = start_sink(sink_port)
        try:
            rounds = []
            for number in range(args.rounds):
                print(f"-- round {number + 1} of {args.rounds}", flush=True)
                rounds.append(one_round(args.duration, tmp, sink_port, args.base, base_src))
            summary(median_rows(rounds), args.base)
        finally:
            sink.stop()
            if base_src is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(base_src.parent)], check=False)


if __name__ == "__main__":
    main()
