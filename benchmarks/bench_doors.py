"""The three doors side by side: added latency and gateway CPU per request on Chat
Completions, Anthropic Messages and OpenAI Responses, each answered by the same
Chat-Completions upstream (so the Messages and Responses rows include the translation both
ways), plain and streamed (20 tokens).

Run: .venv/bin/python benchmarks/bench_doors.py [--duration 4] [--base c4a7b0b] [--rounds 3]

Processes as in ``bench_gateway.py``: the upstream stub on core 1, one ``pointsman serve``
pinned to core 0 (heuristic routing, SQLite request log on, memory budgets), ``wrk`` on
core 1. Per door and mode:
- c=1: p50 / p99 through the gateway minus the same call straight to the stub in the same
  wire format (the stub speaks all three), i.e. what the gateway adds;
- c=16 for ``--duration`` seconds, twice: the gateway's CPU time (user + sys, request-log
  writer thread included) divided by the requests wrk completed: CPU per request (the less
  of the two: on a shared host, neighbours only ever add time).

``--base REV`` also runs the gateway of an older commit (a ``git worktree`` of REV in a
temporary folder) on its Chat Completions door in the same run, the reference for "Chat
Completions unchanged". LiteLLM's proxy (``.venv-bench``, see bench_gateway.py) runs on the
same three doors when present. Each figure is the median over ``--rounds`` rounds; each
gateway gets a new request log each round, and the order of ours and the base alternates.
Against the base the summary also gives the median of the rounds' own ratios and the
ratio of each side's least CPU per request (the figures least disturbed by the host).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench_gateway import (
    BENCH_VENV,
    PYTHON,
    REPO,
    Proc,
    cpu_seconds,
    free_port,
    gateway_config,
    start_stub,
    taskset,
    wait_ready,
)

PROMPT = "What is the capital of France?"
CPU_REPS = 2  # loaded runs per row; the CPU figure is the least of them
Body = Callable[[bool], dict[str, object]]
DOORS: dict[str, tuple[str, Body]] = {
    "chat": ("/v1/chat/completions",
             lambda stream: {"model": "gpt-4o-mini", "stream": stream,
                             "messages": [{"role": "user", "content": PROMPT}]}),
    "messages": ("/v1/messages",
                 lambda stream: {"model": "gpt-4o-mini", "stream": stream, "max_tokens": 64,
                                 "messages": [{"role": "user", "content": PROMPT}]}),
    "responses": ("/v1/responses",
                  lambda stream: {"model": "gpt-4o-mini", "stream": stream, "input": PROMPT,
                                  "store": False}),
}
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "sk-bench"
wrk.headers["anthropic-version"] = "2023-06-01"
"""


def wrk(url: str, body: dict[str, object], concurrency: int, seconds: float,
        tmp: Path) -> dict[str, float]:
    script = tmp / "doors.lua"
    script.write_text(WRK_SCRIPT % json.dumps(body))
    out = subprocess.run(
        [*taskset(1), "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
         "--latency", "-s", str(script), url], capture_output=True, text=True,
        check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    result = {"n": 0.0, "p50": 0.0, "p99": 0.0}
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for line in out.splitlines():
        words = line.split()
        if "requests in" in line:
            result["n"] = float(words[0])
        elif words[:1] in (["50%"], ["99%"]):
            value = words[1]
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            result["p50" if words[0] == "50%" else "p99"] = float(value[:-len(unit)]) * units[
                unit]
    return result


def measure(base: str, pid: int, stub: str, door: str, stream: bool, seconds: float,
            tmp: Path) -> dict[str, float]:
    path, body = DOORS[door]
    direct = wrk(f"{stub}{path}", body(stream), 1, seconds, tmp)
    via = wrk(f"{base}{path}", body(stream), 1, seconds, tmp)
    cpu_us = []
    for _ in range(CPU_REPS):  # the least disturbed of a few: a shared host only adds time
        before = cpu_seconds(pid)
        loaded = wrk(f"{base}{path}", body(stream), 16, seconds, tmp)
        cpu_us.append(1e6 * (cpu_seconds(pid) - before) / max(loaded["n"], 1.0))
    return {"added_p50_ms": via["p50"] - direct["p50"],
            "added_p99_ms": via["p99"] - direct["p99"],
            "cpu_us": min(cpu_us)}


def start_pointsman(config: Path, port: int, src: Path | None) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    proc = Proc(subprocess.Popen(
        [*taskset(0), PYTHON, "-m", "pointsman", "serve", "--config", str(config), "--port",
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    wait_ready(f"http://127.0.0.1:{port}/health")
    return proc


def start_litellm(stub_port: int, port: int, tmp: Path) -> Proc:
    config = tmp / "litellm.yaml"
    config.write_text(yaml.safe_dump({"model_list": [{
        "model_name": "gpt-4o-mini",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-bench",
                           "api_base": f"http://127.0.0.1:{stub_port}/v1"}}],
        "litellm_settings": {"telemetry": False}}))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    proc = Proc(subprocess.Popen(
        [*taskset(0), str(BENCH_VENV / "bin" / "litellm"), "--config", str(config), "--port",
         str(port), "--num_workers", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=env))
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
    return proc


def run_target(name: str, start: Callable[[int, int, Path], Proc], doors: list[str],
               seconds: float, tmp: Path) -> dict[str, dict[str, float]]:
    """One gateway (with a request log of its own, new each round) through ``doors``."""
    home = Path(tempfile.mkdtemp(dir=tmp))
    stub_port, port = free_port(), free_port()
    stub = start_stub(stub_port, 0.0)
    out: dict[str, dict[str, float]] = {}
    try:
        proc = start(stub_port, port, home)
        try:
            for door in doors:
                for stream in (False, True):
                    label = f"{name} {door}{' stream' if stream else ''}"
                    out[label] = measure(f"http://127.0.0.1:{port}", proc.popen.pid,
                                         f"http://127.0.0.1:{stub_port}", door, stream,
                                         seconds, tmp)
                    print(f"  {label:32} {fmt(out[label])}", flush=True)
        finally:
            proc.stop()
    finally:
        stub.stop()
    return out


def fmt(row: dict[str, float]) -> str:
    return (f"added p50 {row['added_p50_ms']:+.2f} ms  p99 {row['added_p99_ms']:+.2f} ms  "
            f"CPU {row['cpu_us']:.0f} µs/request")


def worktree(rev: str, tmp: Path) -> Path:
    path = tmp / f"base-{rev}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path),
                    rev], check=True)
    return path


def median_rows(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {label: {k: statistics.median(r[label][k] for r in rounds)
                    for k in rounds[0][label]} for label in rounds[0]}


def one_round(args: argparse.Namespace, tmp: Path, base_src: Path | None, number: int
              ) -> dict[str, dict[str, float]]:
    def ours(src: Path | None) -> Callable[[int, int, Path], Proc]:
        return lambda stub_port, port, home: start_pointsman(gateway_config(home, stub_port),
                                                             port, src)
    doors = args.doors.split(",")
    rows: dict[str, dict[str, float]] = {}
    targets: list[tuple[str, Path | None, list[str]]] = [("pointsman", None, doors)]
    if base_src is not None:
        targets.append((f"base {args.base}", base_src, ["chat"]))
    for name, src, which in targets[::-1] if number % 2 else targets:  # alternate the order
        rows |= run_target(name, ours(src), which, args.duration, tmp)
    if (BENCH_VENV / "bin" / "litellm").exists() and not args.no_litellm:
        rows |= run_target("litellm", lambda s, p, home: start_litellm(s, p, home), doors,
                           args.duration, tmp)
    return rows


def summary(rounds: list[dict[str, dict[str, float]]], base: str | None) -> None:
    rows = median_rows(rounds)
    print("\n-- medians")
    for label, row in rows.items():
        print(f"  {label:32} {fmt(row)}")
    for door in ("messages", "responses"):
        if f"pointsman {door}" not in rows:
            continue
        for suffix in ("", " stream"):
            row, ref = rows[f"pointsman {door}{suffix}"], rows[f"pointsman chat{suffix}"]
            print(f"  {door}{suffix} vs chat{suffix}: CPU {row['cpu_us'] / ref['cpu_us']:.2f}x, "
                  f"added p50 {row['added_p50_ms'] - ref['added_p50_ms']:+.2f} ms")
    if base is not None:
        for suffix in ("", " stream"):
            ours, theirs = f"pointsman chat{suffix}", f"base {base} chat{suffix}"
            new, old = rows[ours], rows[theirs]
            ratios = [r[ours]["cpu_us"] / r[theirs]["cpu_us"] for r in rounds]
            least = (min(r[ours]["cpu_us"] for r in rounds)
                     / min(r[theirs]["cpu_us"] for r in rounds))
            print(f"  chat{suffix} vs {base}: CPU {new['cpu_us'] / old['cpu_us']:.2f}x "
                  f"(median of the rounds' ratios {statistics.median(ratios):.2f}x, of the "
                  f"least of each {least:.2f}x), added p50 "
                  f"{new['added_p50_ms'] - old['added_p50_ms']:+.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=None, help="also run this commit's chat door")
    parser.add_argument("--doors", default=",".join(DOORS), help="comma-separated doors")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base_src = worktree(args.base, tmp) / "src" if args.base else None
        try:
            rounds = []
            for number in range(args.rounds):
                print(f"-- round {number + 1} of {args.rounds}", flush=True)
                rounds.append(one_round(args, tmp, base_src, number))
                time.sleep(1)
            summary(rounds, args.base)
        finally:
            if base_src is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(base_src.parent)], check=False)


if __name__ == "__main__":
    main()
