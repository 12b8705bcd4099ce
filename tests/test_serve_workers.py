"""``pointsman serve --workers 2`` as a user runs it, against the upstream stub: both
workers answer on one port; the request log, the budget ledger, cooldowns and metrics are
the whole server's; SIGTERM drains both (exit 3 when requests had to be interrupted); a
killed worker is replaced."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from budget_gateway_support import ledger_totals, logged, logged_nanos
from pointsman.budget.ledger import to_nanos
from pointsman.config import load_config
from pointsman.testing.upstream import UpstreamStub

PYTHON = sys.executable
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 24}


@contextmanager
def serving(config: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``pointsman serve --workers 2`` as a process; yields it and its URL once healthy."""
    proc = subprocess.Popen([PYTHON, "-m", "pointsman", "serve", "--config", str(config),
                             "--port", "0", "--workers", "2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+) .*2 workers", first)
        assert found, first + (proc.stderr.read() if proc.stderr else "")
        url = found.group(1)
        assert len(pids_of(url, 40, timeout=60)) == 2, "both workers did not come up"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def pids_of(url: str, connections: int, timeout: float = 30) -> set[int]:
    """The worker pids that answer ``GET /health`` on fresh connections (the kernel
    spreads connections over the workers' sockets)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    for _ in range(connections):
        while True:
            try:
                seen.add(httpx.get(f"{url}/health", timeout=10).json()["pid"])
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gateway did not answer"
                time.sleep(0.05)
    return seen


def config(tmp_path: Path, stub: UpstreamStub, **extra: Any) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]},
        "rules": [],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0}, **extra.pop("gateway", {})},
        "budgets": extra.pop("budgets", {"store": "sqlite",
                                         "sqlite_path": str(tmp_path / "spend.db")}),
        **extra}))
    return path


async def _many(url: str, n: int, body: dict[str, Any] = CHAT) -> list[httpx.Response]:
    """``n`` requests at once, each on its own connection."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/v1/chat/completions", json=body)
                                      for _ in range(n)))


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(60)
    assert proc.stdout is not None
    return status, proc.stdout.read()


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((name + "{", name + " ")))


def test_both_workers_answer_one_log_and_whole_server_metrics(tmp_path: Path) -> None:
    with UpstreamStub() as stub, serving(config(tmp_path, stub)) as (proc, url):
        answers = asyncio.run(_many(url, 60))
        assert [a.status_code for a in answers] == [200] * 60
        metrics = httpx.get(f"{url}/metrics").text
        status, _ = _stop(proc)
    assert status == 0
    assert _metric(metrics, "pointsman_requests_total") == 60  # both workers' counts
    assert _metric(metrics, "pointsman_routing_decisions_total") == 60
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60  # none lost or doubled
    assert sorted(a.headers["x-pointsman-request-id"] for a in answers) == sorted(
        r["id"] for r in rows)
    assert len({r["id"][:16] for r in rows}) == 2  # record ids: one prefix per worker


def test_240_concurrent_requests_on_two_workers_never_overspend(tmp_path: Path) -> None:
    """One SQLite ledger for both workers: a budget for about 50 requests, 240 at once;
    the ledger equals the request log, and nothing stays reserved."""
    with UpstreamStub() as stub:
        stub.behave("*", tokens=24, delay_ms=200)  # holds overlap across the workers
        probe_cfg = config(tmp_path, stub)
        with serving(probe_cfg) as (proc, url):  # one request's cost, measured
            [one] = asyncio.run(_many(url, 1))
            assert one.status_code == 200
            _stop(proc)
        cost = to_nanos(logged(tmp_path / "requests.db")[0]["cost_usd"])
        (tmp_path / "requests.db").unlink()
        spend = tmp_path / "budget.db"
        budgets = {"store": "sqlite", "sqlite_path": str(spend), "limits": [
            {"scope": "global", "limit_usd": 50 * cost / 1e9}]}
        path = config(tmp_path, stub, budgets=budgets)
        with serving(path) as (proc, url):
            answers = asyncio.run(_many(url, 240))
            status, _ = _stop(proc)
    assert status == 0
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert 30 <= len(served) <= 50, len(served)
    assert {(a.status_code, a.json()["error"]["code"]) for a in refused} == {
        (429, "budget_exceeded")}, [a.text for a in refused][:3]
    rows = logged(tmp_path / "requests.db")
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert len(ok) == len(served) and len({r["id"][:16] for r in rows}) == 2
    total = ledger_totals(load_config(path), "global:all")
    assert total.spent == logged_nanos(ok) and total.spent <= 50 * cost
    assert total.held == 0


def test_a_cooldown_opened_by_one_worker_is_seen_by_the_other(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        stub.behave("gpt-4o-mini", statuses=[500] * 50)
        path = config(tmp_path, stub, gateway={"health": {
            "consecutive_failures": 1, "cooldown_s": 60}})
        with serving(path) as (proc, url):
            failed = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30)
            assert failed.status_code >= 500
            time.sleep(1.0)  # the target: seen by every worker within one second
            seen: dict[int, list[str]] = {}
            for _ in range(30):  # fresh connections: both workers answer some
                health = httpx.get(f"{url}/health", timeout=10).json()
                seen.setdefault(health["pid"], []).extend(health["cooling_down"])
            _stop(proc)
        assert stub.requests("gpt-4o-mini") == 1
    assert len(seen) == 2
    assert all(cooling and set(cooling) == {"gpt-4o-mini"} for cooling in seen.values())


def test_sigterm_drains_both_workers(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        stub.behave("*", delay_ms=1500)
        with serving(config(tmp_path, stub)) as (proc, url):
            async def during() -> list[httpx.Response]:
                calls = asyncio.create_task(_many(url, 12))
                while stub.stats()["total"] < 12:  # every request is upstream
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                return await calls

            answers = asyncio.run(during())
            status = proc.wait(60)
            assert proc.stdout is not None
            out = proc.stdout.read()
    assert status == 0 and "2 workers stopped (exit status 0)" in out
    assert [a.status_code for a in answers] == [200] * 12
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == 12 and {r["outcome"] for r in rows} == {"ok"}
    assert len({r["id"][:16] for r in rows}) == 2


def test_interrupted_requests_make_the_server_exit_3(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        stub.behave("*", delay_ms=30_000)
        path = config(tmp_path, stub, gateway={"drain_timeout_s": 2})
        with serving(path) as (proc, url):
            async def during() -> list[httpx.Response]:
                calls = asyncio.create_task(_many(url, 8))
                while stub.stats()["total"] < 8:
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                return await calls

            answers = asyncio.run(during())
            status = proc.wait(60)
            assert proc.stdout is not None
            out = proc.stdout.read()
    assert status == 3 and "interrupted" in out
    assert [a.status_code for a in answers] == [503] * 8
    rows = logged(tmp_path / "requests.db")
    assert sorted(r["outcome"] for r in rows) == ["interrupted"] * 8
    spent = ledger_totals(load_config(path), "global:all")
    assert spent.held == 0


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    with UpstreamStub() as stub, serving(config(tmp_path, stub)) as (proc, url):
        before = pids_of(url, 30)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = pids_of(url, 30)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.2)
        answers = asyncio.run(_many(url, 20))
        status, _ = _stop(proc)
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert now & before == before - {victim}
    assert [a.status_code for a in answers] == [200] * 20
    assert status == 0 and f"(pid {victim}) exited (signal 9); starting another" in err


def test_sighup_reloads_every_worker_and_a_replaced_one_serves_the_new_config(
        tmp_path: Path) -> None:
    """SIGHUP to the server reaches every worker (each reloads the file); a worker started
    after the reload (the old one killed) serves the new config too."""
    key = {"name": "new", "key": "sk-new-0123456789"}
    auth = {"authorization": f"Bearer {key['key']}"}

    def answered_by_new_key(url: str) -> set[int]:
        ok: set[int] = set()
        for _ in range(30):
            with httpx.Client(base_url=url, timeout=30) as http:
                if http.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 200:
                    ok.add(http.get("/health").json()["pid"])
        return ok

    with UpstreamStub() as stub:
        path = config(tmp_path, stub)
        with serving(path) as (proc, url):
            workers = pids_of(url, 30)
            config(tmp_path, stub, gateway={"keys": [key]})  # the file now has a key
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while answered_by_new_key(url) != workers:
                assert time.monotonic() < deadline, "not every worker reloaded"
                time.sleep(0.2)
            os.kill(min(workers), signal.SIGKILL)
            while len(pids_of(url, 30)) < 2 or min(workers) in pids_of(url, 30):
                assert time.monotonic() < deadline + 60, "the worker was not replaced"
                time.sleep(0.2)
            assert answered_by_new_key(url) == pids_of(url, 30)
            status, _ = _stop(proc)
    assert status == 0


def test_workers_refuse_a_memory_ledger_with_budgets(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        path = config(tmp_path, stub, budgets={
            "store": "memory", "limits": [{"scope": "global", "limit_usd": 1}]})
    result = subprocess.run([PYTHON, "-m", "pointsman", "serve", "--config", str(path),
                             "--port", "0", "--workers", "2"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "budgets.store is memory" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("asked", [None, 1])
def test_one_worker_by_default_with_a_memory_ledger(tmp_path: Path, asked: int | None) -> None:
    from pointsman.gateway.workers import resolve_workers

    with UpstreamStub() as stub:
        path = config(tmp_path, stub, budgets={
            "store": "memory", "limits": [{"scope": "global", "limit_usd": 1}]})
    count, note = resolve_workers(asked, load_config(path))
    assert count == 1
    assert (note is not None and "budgets.store is memory" in note) == (asked is None)


def test_a_config_error_in_the_workers_stops_the_server_with_status_2(tmp_path: Path) -> None:
    """Caught only when a worker builds its gateway (the default rules name a model the
    candidates lack): one line, status 2, no crash loop."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"router": {"candidates": ["gpt-4o-mini"]},
                                    "budgets": {"store": "sqlite",
                                                "sqlite_path": str(tmp_path / "s.db")}}))
    result = subprocess.run([PYTHON, "-m", "pointsman", "serve", "--config", str(path),
                             "--port", "0", "--workers", "2"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "pointsman: error: " in result.stderr and "no candidate model" in result.stderr
    assert "starting another" not in result.stderr and "Traceback" not in result.stderr
