"""What judged samples cost the caller: p50 / p99 of the caller's latency through the
gateway with judging off and with ``judging.share: 0.1`` (reference and judge calls in
the background), in the same run, phases interleaved (off, on, off, on ...) so both see
the same machine noise. Prints figures; asserts nothing.

Processes: the upstream stub (``python -m pointsman.testing.upstream``, every answer after
``--delay-ms``; the judge model answers as a scripted judge) and two ``pointsman serve``
gateways (SQLite request log on; one with judging), the load from this process (async httpx,
``--concurrency`` callers).

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_judged.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import free_port, wait_ready  # a sibling script

PYTHON = sys.executable
WEAK, STRONG, JUDGE = "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"


def gateway_config(work: Path, name: str, stub: str, share: float | None) -> Path:
    data: dict[str, Any] = {
        "router": {"candidates": [WEAK, STRONG], "mode": "threshold", "strong_model": STRONG,
                   "weak_model": WEAK, "scorer": "heuristic", "threshold": 0.5},
        "rules": [],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub}},
                      "deployments": {m: [{"endpoint": "stub"}] for m in (WEAK, STRONG, JUDGE)}},
        "gateway": {"request_log": {"sqlite_path": str(work / f"{name}.db")}},
        "budgets": {"store": "memory"},
    }
    if share is not None:
        data["judging"] = {"enabled": True, "share": share, "reference_model": STRONG,
                           "judge_model": JUDGE, "budget_usd": 100.0, "max_concurrency": 4}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def phase(url: str, requests: int, concurrency: int, offset: int) -> list[float]:
    """Per-request seconds for ``requests`` calls from ``concurrency`` callers."""
    out: list[float] = []
    counter = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def caller() -> None:
            for i in counter:
                hard = "prove the theorem step by step" if i % 2 else "say hello"
                body = {"model": "auto", "messages": [
                    {"role": "user", "content": f"{hard} #{offset + i}"}]}
                start = time.perf_counter()
                answer = await client.post("/v1/chat/completions", json=body)
                out.append(time.perf_counter() - start)
                answer.raise_for_status()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def judged_counts(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'pointsman_judged_samples_total\{result="(\w+)"\} ([0-9.e+]+)', text)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="per mode, in all")
    parser.add_argument("--phases", type=int, default=4, help="interleaved phases per mode")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="upstream delay")
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            sport = free_port()
            procs.append(subprocess.Popen([PYTHON, "-m", "pointsman.testing.upstream",
                                           "--port", str(sport), "--delay-ms",
                                           str(args.delay_ms)], env=env))
            stub = f"http://127.0.0.1:{sport}"
            wait_ready(f"{stub}/v1/models")
            httpx.post(f"{stub}/_stub/behavior", json={"model": JUDGE, "judge": True,
                                                       "judge_low": [WEAK]}, timeout=10)
            urls = {}
            for name, share in (("off", None), ("on", 0.1)):
                port = free_port()
                cfg = gateway_config(work, name, f"{stub}/v1", share)
                procs.append(subprocess.Popen([PYTHON, "-m", "pointsman", "serve", "--config",
                                               str(cfg), "--port", str(port)], env=env,
                                              cwd=work))
                urls[name] = f"http://127.0.0.1:{port}"
                wait_ready(f"{urls[name]}/health")
            run(urls, args)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=30)


def run(urls: dict[str, str], args: argparse.Namespace) -> None:
    per_phase = args.requests // args.phases
    for url in urls.values():  # warm up both
        asyncio.run(phase(url, 50, args.concurrency, 10_000_000))
    seen: dict[str, list[float]] = {"off": [], "on": []}
    p99s: dict[str, list[float]] = {"off": [], "on": []}
    for k in range(args.phases):
        for name in ("off", "on"):
            latencies = asyncio.run(phase(urls[name], per_phase, args.concurrency,
                                          k * per_phase))
            seen[name] += latencies
            p99s[name].append(pct(latencies, 0.99))
    time.sleep(2)  # let the last samples finish before counting them
    print(f"caller latency through the gateway, upstream delay {args.delay_ms:g} ms, "
          f"c={args.concurrency}, {per_phase * args.phases} requests per mode in "
          f"{args.phases} interleaved phases (machine shared: noisy)")
    for name, label in (("off", "judging off"), ("on", "judging 10%")):
        values = seen[name]
        print(f"  {label:12s} p50 {pct(values, 0.5):7.2f} ms   p99 {pct(values, 0.99):7.2f} ms"
              f"   mean {sum(values) / len(values) * 1000:7.2f} ms")
    for name in ("off", "on"):
        print(f"  {name:3s} p99 per phase: "
              + ", ".join(f"{v:.2f}" for v in p99s[name]) + " ms")
    low, high = min(p99s["off"]), max(p99s["off"])
    inside = low <= pct(seen["on"], 0.99) <= high
    print(f"  judging 10% p99 within the spread of the off phases' p99 "
          f"({low:.2f}-{high:.2f} ms): {'yes' if inside else 'no'}")
    print(f"  judged samples (judging 10%): {judged_counts(urls['on'])}")
    print(f"  p99 difference: {pct(seen['on'], 0.99) - pct(seen['off'], 0.99):+.2f} ms, "
          f"p50 difference: {pct(seen['on'], 0.5) - pct(seen['off'], 0.5):+.2f} ms")


if __name__ == "__main__":
    main()
