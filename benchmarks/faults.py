"""The fault suite: money stays exact under faults, against real processes.

Run: .venv/bin/python benchmarks/faults.py [--only NAME ...] [--quick]

Each scenario starts its own processes on loopback: a redis-server of its own (never the
shared one), the upstream stub, three ``pointsman serve`` replicas sharing that Redis for
the spend ledger (each with its own SQLite request log); it drives load, injects its fault,
waits until nothing is in flight and leases have lapsed, and prints one row: requests,
answered (2xx), refused (4xx), 5xx, **ledger − log** (nanodollars: the global budget's
spend minus the sum of every replica's logged costs) and **left reserved** (nanodollars).
Both must be 0.

Scenarios: ``burst`` (240 concurrent requests, half streamed, over 3 replicas on a budget
for ~50: no spurious 503), ``redis_blip`` (the ledger's Redis frozen for 4 s during load,
fail_closed), ``clients_leave`` (200 streams whose clients disconnect at random points),
``sigkill`` (a replica holding reservations is SIGKILLed), ``sigterm`` (a replica is
stopped during load with requests longer than its drain), ``upstream_faults`` (429s, 500s
and cut streams from the upstream).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

PYTHON = sys.executable
LIMIT_USD = 100.0
PROMPT = [{"role": "user", "content": "Tell me about the history of trains"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@dataclass
class World:
    """The processes of one scenario."""

    tmp: Path
    redis_port: int
    stub_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    gateways: list[str] = field(default_factory=list)  # base URLs
    configs: list[Path] = field(default_factory=list)

    def start_redis(self) -> None:
        self.procs["redis"] = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"],
                             capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def start_stub(self) -> None:
        self.procs["stub"] = subprocess.Popen(
            [PYTHON, "-m", "pointsman.testing.upstream", "--port", str(self.stub_port),
             "--tokens", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.stub_port}/v1/models")

    def config(self, i: int, extra: dict[str, Any]) -> Path:
        data: dict[str, Any] = {
            "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]}, "rules": [],
            "providers": {"endpoints": {"stub": {
                "kind": "openai", "base_url": f"http://127.0.0.1:{self.stub_port}/v1"}},
                "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                "gpt-4.1": [{"endpoint": "stub"}]},
                "timeouts": {"connect": 2, "first_token": 20, "total": 60}},
            "redis": {"url": f"redis://127.0.0.1:{self.redis_port}/0", "prefix": "faults:"},
            "gateway": {"request_log": {"sqlite_path": str(self.tmp / f"requests-{i}.db")},
                        "retry": {"max_retries": 0}, "drain_timeout_s": 5},
            "budgets": {"store": "redis", "on_store_error": "fail_closed", "lease_s": 3,
                        "alerts": {"thresholds": []},
                        "limits": [{"scope": "global", "limit_usd": LIMIT_USD}]},
        }
        for section, values in extra.items():
            data[section] = {**data.get(section, {}), **values}
        path = self.tmp / f"replica-{i}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def start_gateways(self, extra: dict[str, Any]) -> None:
        for i in range(3):
            port, config = free_port(), self.config(i, extra)
            self.procs[f"gw{i}"] = subprocess.Popen(
                [PYTHON, "-m", "pointsman", "serve", "--config", str(config), "--port",
                 str(port), "--workers", "1"],  # a replica is one process: killable as one
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.gateways.append(f"http://127.0.0.1:{port}")
            self.configs.append(config)
        for url in self.gateways:
            wait_http(f"{url}/health")

    def behave(self, model: str, **changes: Any) -> None:
        httpx.post(f"http://127.0.0.1:{self.stub_port}/_stub/behavior",
                   json={"model": model, **changes}).raise_for_status()

    def stop(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT if name == "redis" else signal.SIGTERM)
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@contextmanager
def world(extra: dict[str, Any] | None = None) -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="pointsman-faults-") as name:
        w = World(Path(name), free_port(), free_port())
        try:
            w.start_redis()
            w.start_stub()
            w.start_gateways(extra or {})
            yield w
        finally:
            w.stop()


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, status: int) -> None:
        self.statuses[status] += 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def band(self, low: int) -> int:
        return sum(n for s, n in self.statuses.items() if low <= s < low + 100)


async def one(client: httpx.AsyncClient, url: str, stream: bool, tally: Tally,
              leave_after: int | None = None) -> None:
    body = {"model": "auto", "stream": stream, "messages": PROMPT}
    try:
        if not stream:
            tally.add((await client.post(f"{url}/v1/chat/completions", json=body)).status_code)
            return
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            tally.add(r.status_code)
            got = 0
            async for part in r.aiter_bytes():
                got += len(part)
                if leave_after is not None and got >= leave_after:
                    return  # the client leaves mid-stream
    except httpx.HTTPError:
        tally.add(599)  # no answer at all (a killed replica, a reset)


def ledger_state(w: World) -> tuple[int, int]:
    """(spent, held) of the global budget today, nanodollars, read from the shared Redis."""
    from pointsman.budget import windows
    from pointsman.budget.factory import build_ledger
    from pointsman.config import load_config

    cfg = load_config(w.configs[0])

    async def read() -> tuple[int, int]:
        ledger = build_ledger(cfg.budgets, redis=cfg.redis)
        now = time.time()
        span = windows.calendar("day", now, ZoneInfo(cfg.budgets.timezone))
        try:
            [total] = await ledger.totals([[f"global:all:{span.charge}"]], now)
        finally:
            await ledger.aclose()
        return total.spent, total.held
    return asyncio.run(read())


def logged_nanos(w: World) -> int:
    from pointsman.budget.ledger import to_nanos

    total = 0
    for i in range(3):
        path = w.tmp / f"requests-{i}.db"
        if path.exists():
            with sqlite3.connect(path) as conn:
                total += sum(to_nanos(c) for (c,) in conn.execute("SELECT cost_usd FROM requests"))
    return total


def settle_down(w: World, lease_s: float = 3.0) -> tuple[int, int]:
    """Wait until nothing is held (or a lease and a margin have passed), after the replicas
    flushed their logs (SIGTERM drains and flushes), then (ledger − log, held)."""
    for name, proc in w.procs.items():
        if name.startswith("gw") and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in w.procs.items():
        if name.startswith("gw"):
            proc.wait(60)
    deadline = time.monotonic() + 3 * lease_s + 5
    spent, held = ledger_state(w)
    while held and time.monotonic() < deadline:
        time.sleep(0.5)
        spent, held = ledger_state(w)
    return spent - logged_nanos(w), held


def run_load(w: World, n: int, width: int, stream: Callable[[int], bool],
             leave: Callable[[int], int | None] = lambda i: None,
             during: Callable[[], None] | None = None, rate: float | None = None) -> Tally:
    """``n`` requests over the replicas, ``width`` at a time (started at ``rate`` per
    second when given); ``during`` runs (in a thread) one second in."""
    tally = Tally()

    async def go() -> None:
        limits = httpx.Limits(max_connections=width * 3)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            sem = asyncio.Semaphore(width)

            async def bounded(i: int) -> None:
                async with sem:
                    await one(client, w.gateways[i % 3], stream(i), tally, leave(i))
            fault = asyncio.create_task(_after(1.0, during))
            tasks = []
            for i in range(n):
                tasks.append(asyncio.create_task(bounded(i)))
                if rate is not None:
                    await asyncio.sleep(1 / rate)
            await asyncio.gather(*tasks, fault)
    asyncio.run(go())
    return tally


async def _after(seconds: float, work: Callable[[], None] | None) -> None:
    if work is not None:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(work)


# -- the scenarios ------------------------------------------------------------------------

def burst(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    # each request reserves its estimate (~$0.0002 with the margin): a cap for ~50
    extra = {"budgets": {"limits": [{"scope": "global", "limit_usd": 0.012}]}}
    return extra_world(extra, lambda w: run_load(w, 240, 240, lambda i: i % 2 == 0))


def redis_blip(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    def scenario(w: World) -> Tally:
        redis = w.procs["redis"]

        def blip() -> None:
            redis.send_signal(signal.SIGSTOP)
            time.sleep(4)
            redis.send_signal(signal.SIGCONT)
        return run_load(w, 200 if quick else 400, 8, lambda i: i % 3 == 0, during=blip,
                        rate=40.0)
    return extra_world({}, scenario)


def clients_leave(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    rng = random.Random(5)

    def scenario(w: World) -> Tally:
        w.behave("*", tokens=40, token_delay_ms=2)
        return run_load(w, 200 if quick else 640, 32, lambda i: True,
                        leave=lambda i: rng.randint(1, 5000))
    return extra_world({}, scenario)


def sigkill(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    def scenario(w: World) -> Tally:
        w.behave("*", delay_ms=2500)

        def kill() -> None:
            w.procs["gw0"].send_signal(signal.SIGKILL)
        return run_load(w, 60, 60, lambda i: i % 2 == 0, during=kill)
    return extra_world({}, scenario)


def sigterm(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    def scenario(w: World) -> Tally:
        w.behave("*", tokens=200, token_delay_ms=50)

        def stop() -> None:
            w.procs["gw0"].send_signal(signal.SIGTERM)
        return run_load(w, 60, 60, lambda i: i % 2 == 0, during=stop)
    return extra_world({"gateway": {"drain_timeout_s": 2}}, scenario)


def upstream_faults(quick: bool) -> tuple[Tally, World, dict[str, Any]]:
    def scenario(w: World) -> Tally:
        w.behave("gpt-4o-mini", statuses=[429, 500, 503] * 20, retry_after=0)
        w.behave("gpt-4.1", cut_after=3, cut_mode="reset")
        return run_load(w, 200 if quick else 400, 16, lambda i: i % 2 == 0)
    return extra_world({}, scenario)


def extra_world(extra: dict[str, Any], scenario: Callable[[World], Tally]
                ) -> tuple[Tally, World, dict[str, Any]]:
    with world(extra) as w:
        tally = scenario(w)
        diff, held = settle_down(w)
    return tally, w, {"ledger_minus_log": diff, "held": held}


SCENARIOS: dict[str, Callable[[bool], tuple[Tally, World, dict[str, Any]]]] = {
    "burst": burst, "redis_blip": redis_blip, "clients_leave": clients_leave,
    "sigkill": sigkill, "sigterm": sigterm, "upstream_faults": upstream_faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--quick", action="store_true", help="fewer requests per scenario")
    parser.add_argument("--statuses", action="store_true", help="also each HTTP status")
    args = parser.parse_args()
    os.environ.setdefault("POINTSMAN_LOG_LEVEL", "WARNING")
    print(f"{'scenario':16} {'requests':>8} {'answered':>8} {'refused':>7} {'5xx':>5} "
          f"{'no answer':>9} {'503':>5} {'ledger-log':>11} {'reserved':>9}")
    for name in args.only or list(SCENARIOS):
        tally, _, money = SCENARIOS[name](args.quick)
        print(f"{name:16} {tally.requests:8d} {tally.band(200):8d} {tally.band(400):7d} "
              f"{tally.band(500) - tally.statuses[599]:5d} {tally.statuses[599]:9d} "
              f"{tally.statuses[503]:5d} {money['ledger_minus_log']:11d} {money['held']:9d}"
              + (f"  {dict(sorted(tally.statuses.items()))}" if args.statuses else ""),
              flush=True)


if __name__ == "__main__":
    main()
