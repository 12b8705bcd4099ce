"""Gateway overhead: added latency and throughput against calling the upstream stub directly.

Run: .venv/bin/python benchmarks/bench_gateway.py [--duration 4] [--quick]

Processes: the upstream stub (``python -m pointsman.testing.upstream``, uvloop + httptools,
~7,000+ answers/s on one core, so it is not the bottleneck below ~2,000 req/s) on core 1,
one ``pointsman serve`` worker pinned to core 0 (``taskset -c 0``) with heuristic routing and
the SQLite request log on, and the load from a separate process on core 1: ``wrk`` (Debian
package ``wrk``; one thread, keep-alive, a Lua script for the POST body) for non-streaming
and streaming rows at c >= 16 (wrk has no time to first token: those rows are the time to the
whole 20-token stream) and the saturation figure, and this script with ``--load`` (async
httpx) for streaming at c=1 (time to first token), and for everything when ``wrk`` is
absent (the httpx load generator tops out near 800 req/s on one core: its rows at c >= 16
measure the load generator, not the gateway; the header says which generator ran). For
each upstream delay (0 and 50 ms), concurrency (1, 16, 64) and mode it prints p50 / p99
and requests/s for the direct call and through the gateway, and the difference; then the
gateway's saturation (delay 0, c=64, wrk) and its CPU time per request. Also: time from spawning
``pointsman serve`` to its first answered ``/health``, and its idle RSS.

The stack's floor runs too: ``benchmarks/floor_proxy.py``, a pass-through proxy on the same
server and client (uvicorn, Starlette, aiohttp) with no routing, accounting or log, pinned
like the gateway, non-streaming at c=1 for each delay: what any gateway on this stack adds
on this machine before doing any work of its own.

LiteLLM's proxy runs too (one worker on core 0, in front of the same stub) when
``.venv-bench`` exists (``python -m venv .venv-bench && .venv-bench/bin/pip install
'litellm[proxy]==1.74.9'``, the ``bench`` extra); otherwise it is skipped with a message.

Targets (issue 4): added p50 <= 1 ms and p99 <= 3 ms at c=1; with 50 ms delay at c=64
throughput within 5 % of direct; saturation >= 2,000 req/s on one core; idle RSS <= 120 MB;
ready within 1.5 s. The run ends with each target's figure and verdict, and the ratios to
LiteLLM's proxy when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BENCH_VENV = REPO / ".venv-bench"
PROMPT = "What is the capital of France?"
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


# -- the load generator (runs in its own process) ---------------------------------------
async def _one(client: httpx.AsyncClient, body: dict[str, Any], stream: bool) -> float:
    start = time.perf_counter()
    if not stream:
        response = await client.post("/chat/completions", json=body)
        response.raise_for_status()
        return time.perf_counter() - start
    async with client.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        first: float | None = None
        async for line in response.aiter_lines():
            if first is None and line.startswith("data:") and '"content"' in line:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream sent no content")
    return first


async def load(base_url: str, model: str, concurrency: int, duration: float, stream: bool,
               api_key: str | None) -> dict[str, float]:
    body: dict[str, Any] = {"model": model, "stream": stream,
                            "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    transport = httpx.AsyncHTTPTransport(
        socket_options=NODELAY, limits=httpx.Limits(max_connections=concurrency,
                                                    max_keepalive_connections=concurrency))
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, transport=transport, headers=headers,
                                 timeout=30) as client:
        for _ in range(min(concurrency, 8)):  # warm-up
            await _one(client, body, stream)
        stop_at = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                latencies.append(await _one(client, body, stream))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"n": len(latencies), "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


# -- wrk (C load generator, when installed) ----------------------------------------------
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk_ms(text: str) -> float:
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * units[unit]
    return float(text)


def run_wrk(base_url: str, model: str, concurrency: int, duration: float,
            tmp: Path, stream: bool = False) -> dict[str, float]:
    """wrk's figures; for streams, the time to the whole stream (wrk has no TTFT). A 30 s
    request timeout (the machine may be loaded); errors are refused, since a failed request
    costs less than a served one."""
    body = json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": PROMPT}]})
    script = tmp / f"wrk-{model}-{stream}.lua"
    script.write_text(WRK_SCRIPT % body)
    out = subprocess.run(
        [*taskset(1), "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
         "--latency", "--timeout", "30s", "-s", str(script), f"{base_url}/chat/completions"],
        capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {base_url}:\n{out}")
    result = {"n": 0.0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif "requests in" in line:
            result["n"] = float(words[0])
        elif words[:1] == ["50%"]:
            result["p50_ms"] = _wrk_ms(words[1])
        elif words[:1] == ["99%"]:
            result["p99_ms"] = _wrk_ms(words[1])
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- orchestration ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, timeout: float = 30.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def taskset(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def start_stub(port: int, delay_ms: float) -> Proc:
    proc = Proc(subprocess.Popen(
        [*taskset(1), PYTHON, "-m", "pointsman.testing.upstream", "--port", str(port),
         "--delay-ms", str(delay_ms), "--tokens", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models")
    except RuntimeError:
        proc.stop()
        raise
    return proc


def gateway_config(tmp: Path, stub_port: int) -> Path:
    base = f"http://127.0.0.1:{stub_port}/v1"
    data = {
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]},
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": base}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp / "requests.db")}},
        "budgets": {"store": "memory"},
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_gateway(config: Path, port: int) -> tuple[Proc, float, float]:
    spawned = time.perf_counter()
    proc = Proc(subprocess.Popen(
        [*taskset(0), PYTHON, "-m", "pointsman", "serve", "--config", str(config),
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        wait_ready(f"http://127.0.0.1:{port}/health")
    except RuntimeError:
        proc.stop()
        assert proc.popen.stderr is not None
        raise RuntimeError(proc.popen.stderr.read().decode()) from None
    ready = time.perf_counter() - spawned
    return proc, ready, rss_mb(proc.popen.pid)


def wrk_row(stream: bool, concurrency: int) -> bool:
    """wrk for every row but streams at c=1 (those measure time to first token)."""
    return shutil.which("wrk") is not None and (not stream or concurrency > 1)


def run_load(base_url: str, model: str, concurrency: int, duration: float,
             stream: bool, tmp: Path | None = None) -> dict[str, float]:
    if tmp is not None and wrk_row(stream, concurrency):
        return run_wrk(base_url, model, concurrency, duration, tmp, stream)
    out = subprocess.run(
        [*taskset(1), PYTHON, __file__, "--load", base_url, "--model", model,
         "--concurrency", str(concurrency), "--duration", str(duration)]
        + (["--stream"] if stream else []), capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


@dataclass
class Results:
    """Figures kept for the closing summary: the targets and the LiteLLM ratios."""

    rows: dict[str, tuple[dict[str, float], dict[str, float]]] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)

    def added(self, label: str, key: str) -> float | None:
        found = self.rows.get(label)
        return None if found is None else found[1][key] - found[0][key]

    def ratio(self, label: str) -> float | None:
        found = self.rows.get(label)
        return None if found is None else found[1]["rps"] / found[0]["rps"]


RESULTS = Results()


def _verdict(value: float | None, ok: bool) -> str:
    return "not measured" if value is None else ("met" if ok else "MISSED")


def summary() -> None:
    r, f = RESULTS, RESULTS.figures
    checks = [(f"added {key[:3]} at c=1, {mode} (delay {delay}) <= {limit:g} ms",
               r.added(f"{delay} {mode} c=1", f"{key}_ms"), limit)
              for mode in ("non-stream", "stream TTFT") for delay in (0, 50)
              for key, limit in (("p50", 1.0), ("p99", 3.0))]
    print("-- targets (issue 4)")
    for what, value, limit in checks:
        shown = "" if value is None else f"{value:+.2f} ms"
        print(f"{what:<48} {shown:>10}  {_verdict(value, value is not None and value <= limit)}")
    for mode in ("non-stream", "stream total"):
        value = r.ratio(f"50 {mode} c=64")
        shown = "" if value is None else f"{value * 100:.1f} %"
        print(f"{'50 ms delay, c=64, ' + mode + ' >= 95 %':<48} {shown:>10}  "
              f"{_verdict(value, value is not None and value >= 0.95)}")
    for what, key, limit, above in (("saturation >= 2,000 req/s", "saturation", 2000, True),
                                    ("idle RSS <= 120 MB", "rss", 120, False),
                                    ("ready <= 1.5 s", "ready", 1.5, False)):
        value = f.get(key)
        ok = value is not None and (value >= limit if above else value <= limit)
        print(f"{what:<48} {'' if value is None else f'{value:,.2f}':>10}  {_verdict(value, ok)}")
    for delay in (0, 50):
        floor = f.get(f"floor_added_p50_{delay}")
        if floor is not None:
            print(f"(the stack's floor, a pass-through proxy: added p50 at c=1, delay {delay}: "
                  f"{floor:+.2f} ms)")
    litellm_summary()


def litellm_summary() -> None:
    f = RESULTS.figures
    if "litellm_rps" not in f:
        return
    ours, theirs = RESULTS.added("0 non-stream c=1", "p50_ms"), f["litellm_added_p50"]
    print("-- pointsman vs LiteLLM (same stub, one core each, delay 0, non-streaming)")
    if ours is not None:
        print(f"added p50 at c=1: {ours:+.2f} vs {theirs:+.2f} ms ({theirs / max(ours, 1e-6):.1f}x "
              "less added)")
    if "saturation" in f:
        print(f"throughput: {f['saturation']:,.0f} vs {f['litellm_rps']:,.0f} req/s "
              f"({f['saturation'] / f['litellm_rps']:.1f}x)")
    print(f"ready: {f['ready']:.2f} vs {f['litellm_ready']:.2f} s; idle RSS: {f['rss']:.0f} vs "
          f"{f['litellm_rss']:.0f} MB")


def row(label: str, direct: dict[str, float], via: dict[str, float]) -> str:
    return (f"{label:<26} direct p50 {direct['p50_ms']:7.2f} p99 {direct['p99_ms']:7.2f} "
            f"{direct['rps']:7.0f}/s | gateway p50 {via['p50_ms']:7.2f} p99 "
            f"{via['p99_ms']:7.2f} {via['rps']:7.0f}/s | added p50 "
            f"{via['p50_ms'] - direct['p50_ms']:+6.2f} ms p99 "
            f"{via['p99_ms'] - direct['p99_ms']:+6.2f} ms, throughput "
            f"{via['rps'] / direct['rps'] * 100:5.1f} %")


def saturation(gateway: Proc, gw_port: int, duration: float, tmp: Path) -> None:
    """The gateway's requests/s at c=64 (delay 0) and its CPU time per request."""
    if not shutil.which("wrk"):
        print("saturation: skipped (needs wrk: apt-get install wrk)")
        return
    before = cpu_seconds(gateway.popen.pid)
    result = run_wrk(f"http://127.0.0.1:{gw_port}/v1", "auto", 64, duration, tmp)
    used = cpu_seconds(gateway.popen.pid) - before
    RESULTS.figures["saturation"] = result["rps"]
    print(f"saturation (delay 0, c=64, wrk): {result['rps']:.0f} req/s on one core, "
          f"gateway CPU {used / max(result['n'], 1) * 1e6:.0f} us per request, "
          f"p50 {result['p50_ms']:.2f} ms p99 {result['p99_ms']:.2f} ms", flush=True)


def bench(duration: float, concurrencies: Sequence[int], delays: Sequence[float]) -> None:
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f} (shared machine: "
          "figures are noisy when the load is high)")
    generator = ("wrk (streams at c=1: httpx, time to first token)" if shutil.which("wrk") else
                 "httpx only (wrk absent: rows at c >= 16 are limited by the generator)")
    print(f"load generator: {generator}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for delay in delays:
            stub_port, gw_port = free_port(), free_port()
            stub = start_stub(stub_port, delay)
            try:
                gateway, ready, rss = start_gateway(gateway_config(tmp, stub_port), gw_port)
            except BaseException:
                stub.stop()
                raise
            try:
                if delay == delays[0]:
                    RESULTS.figures.update(ready=ready, rss=rss)
                    print(f"pointsman serve: ready in {ready:.2f} s (spawn to first /health), "
                          f"idle RSS {rss:.0f} MB")
                print(f"-- upstream delay {delay:g} ms")
                if delay == 0:
                    saturation(gateway, gw_port, duration, tmp)
                for stream in (False, True):
                    for c in concurrencies:
                        # c=1 behind a 50 ms upstream gets ~20 answers/s: run it longer
                        # so its p99 is not just the slowest of a handful
                        span = duration * 3 if c == 1 and delay > 0 else duration
                        direct = run_load(f"http://127.0.0.1:{stub_port}/v1", "gpt-4o-mini",
                                          c, span, stream, tmp)
                        via = run_load(f"http://127.0.0.1:{gw_port}/v1", "auto", c, span,
                                       stream, tmp)
                        kind = "stream total" if wrk_row(stream, c) else "stream TTFT"
                        label = f"{kind if stream else 'non-stream'} c={c}"
                        RESULTS.rows[f"{delay:g} {label}"] = (direct, via)
                        print(row(label, direct, via), flush=True)
            finally:
                gateway.stop()
                stub.stop()
    with tempfile.TemporaryDirectory() as tmpdir:
        bench_floor(Path(tmpdir), duration, delays)
    litellm = BENCH_VENV / "bin" / "litellm"
    if not litellm.exists():
        print(f"LiteLLM: skipped ({litellm} is absent; see the module docstring)")
    else:
        with tempfile.TemporaryDirectory() as tmpdir:
            bench_litellm(litellm, Path(tmpdir), duration, concurrencies)
    summary()


def bench_floor(tmp: Path, duration: float, delays: Sequence[float]) -> None:
    """The stack's floor: ``floor_proxy.py`` (a pass-through on uvicorn, Starlette and
    aiohttp, no routing) pinned like the gateway, non-streaming at c=1."""
    print("-- floor: a pass-through proxy on the same stack (benchmarks/floor_proxy.py)")
    for delay in delays:
        stub_port, port = free_port(), free_port()
        stub = start_stub(stub_port, delay)
        proxy = Proc(subprocess.Popen(
            [*taskset(0), PYTHON, str(REPO / "benchmarks" / "floor_proxy.py"), "--port",
             str(port), "--upstream", f"http://127.0.0.1:{stub_port}/v1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            wait_ready(f"http://127.0.0.1:{port}/health")
            span = duration * 3 if delay > 0 else duration
            direct = run_load(f"http://127.0.0.1:{stub_port}/v1", "gpt-4o-mini", 1, span,
                              False, tmp)
            via = run_load(f"http://127.0.0.1:{port}/v1", "gpt-4o-mini", 1, span, False, tmp)
            RESULTS.figures[f"floor_added_p50_{delay:g}"] = via["p50_ms"] - direct["p50_ms"]
            print(row(f"floor c=1 delay {delay:g}", direct, via), flush=True)
        finally:
            proxy.stop()
            stub.stop()


def bench_litellm(litellm: Path, tmp: Path, duration: float,
                  concurrencies: Sequence[int]) -> None:
    stub_port, port = free_port(), free_port()
    stub = start_stub(stub_port, 0.0)
    config = tmp / "litellm.yaml"
    config.write_text(yaml.safe_dump({"model_list": [{
        "model_name": "gpt-4o-mini",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-bench",
                           "api_base": f"http://127.0.0.1:{stub_port}/v1"}}],
        "litellm_settings": {"telemetry": False}}))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    spawned = time.perf_counter()
    proxy = Proc(subprocess.Popen(
        [*taskset(0), str(litellm), "--config", str(config), "--port", str(port),
         "--num_workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env))
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
        ready, rss = time.perf_counter() - spawned, rss_mb(proxy.popen.pid)
        RESULTS.figures.update(litellm_ready=ready, litellm_rss=rss)
        print(f"LiteLLM proxy: ready in {ready:.2f} s, idle RSS {rss:.0f} MB "
              "(delay 0 ms, non-streaming)")
        for c in concurrencies:
            direct = run_load(f"http://127.0.0.1:{stub_port}/v1", "gpt-4o-mini", c,
                              duration, False, tmp)
            via = run_load(f"http://127.0.0.1:{port}/v1", "gpt-4o-mini", c, duration, False,
                           tmp)
            print(row(f"litellm c={c}", direct, via), flush=True)
            if c == 1:
                RESULTS.figures["litellm_added_p50"] = via["p50_ms"] - direct["p50_ms"]
            RESULTS.figures["litellm_rps"] = max(RESULTS.figures.get("litellm_rps", 0.0),
                                                 via["rps"])
    finally:
        proxy.stop()
        stub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="c=1 and 16, delay 0 only")
    parser.add_argument("--load", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        result = asyncio.run(load(args.load, args.model, args.concurrency, args.duration,
                                  args.stream, args.api_key))
        print(json.dumps(result))
        return
    if args.quick:
        bench(args.duration, (1, 16), (0.0,))
    else:
        bench(args.duration, (1, 16, 64), (0.0, 50.0))


if __name__ == "__main__":
    main()
