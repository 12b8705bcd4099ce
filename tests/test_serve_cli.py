"""``pointsman serve`` as a user runs it: bad config and unsafe binds are one line + exit 2."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from budget_gateway_support import ledger_totals, logged, logged_nanos
from pointsman.config import load_config
from pointsman.testing.stub_state import Behavior
from pointsman.testing.upstream import UpstreamStub

PYTHON = sys.executable


def run_serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "pointsman", "serve", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"gateway": {"port": "eighty", "nope": 1}}))
    result = run_serve("--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gateway.port" in lines[0] and "gateway.nope" in lines[0]
    assert "Traceback" not in result.stderr


def test_open_gateway_refuses_a_public_bind(tmp_path: Path) -> None:
    result = run_serve("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "no gateway.keys are configured" in result.stderr
    assert "Traceback" not in result.stderr


@contextmanager
def serving(config: Path | None, env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``pointsman serve [--config]`` as a process (``env`` added to this one's, the
    built-in config when ``config`` is None); yields it and its base URL once healthy."""
    argv = [PYTHON, "-m", "pointsman", "serve", "--port", "0"]
    proc = subprocess.Popen([*argv, "--config", str(config)] if config else argv,
                            env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert found, first + (proc.stderr.read() if proc.stderr else "")
        url = found.group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gateway did not come up"
                time.sleep(0.02)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def stub_config(tmp_path: Path, stub: UpstreamStub, **extra: Any) -> Path:
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]},
        "rules": [],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    **extra.pop("gateway", {})},
        "budgets": {"store": "memory"}, **extra}))
    return config


def test_sigterm_drains_in_flight_requests_and_flushes_the_log(tmp_path: Path) -> None:
    with UpstreamStub(default=Behavior(delay_ms=700)) as stub, \
            serving(stub_config(tmp_path, stub)) as (proc, url):
        statuses: list[int] = []

        def call(i: int) -> None:
            r = httpx.post(f"{url}/v1/chat/completions", timeout=10, json={
                "model": "auto", "messages": [{"role": "user", "content": f"hi {i}"}]})
            statuses.append(r.status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while stub.stats()["total"] < 6:  # every request is in flight upstream
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(10)
        assert proc.wait(10) == 0
    assert statuses == [200] * 6
    with sqlite3.connect(tmp_path / "requests.db") as conn:
        rows = conn.execute("SELECT outcome, model FROM requests").fetchall()
    assert sorted(rows) == [("ok", "gpt-4o-mini")] * 6


def test_requests_longer_than_the_drain_are_interrupted_logged_and_charged(
        tmp_path: Path) -> None:
    """SIGTERM with requests that would outlast the 2 s drain: plain ones are answered 503
    ``shutting_down``, streams end with an error event, every one is logged as
    interrupted, the ledger equals the log, nothing stays reserved, and the exit status
    (3) says the drain timed out."""
    budgets = {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
               "limits": [{"scope": "global", "limit_usd": 100}]}
    with UpstreamStub() as stub:
        stub.behave("gpt-4o-mini", delay_ms=30_000)
        stub.behave("gpt-4.1", tokens=400, token_delay_ms=100)
        config = stub_config(tmp_path, stub, gateway={"drain_timeout_s": 2}, budgets=budgets)
        with serving(config) as (proc, url):
            plain: list[httpx.Response] = []
            streams: list[str] = []

            def call() -> None:
                plain.append(httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
                    "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))

            def stream() -> None:
                with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30, json={
                        "model": "gpt-4.1", "stream": True,
                        "messages": [{"role": "user", "content": "hi"}]}) as r:
                    streams.append("".join(r.iter_text()))

            threads = [threading.Thread(target=f) for f in (call, call, stream, stream)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while stub.stats()["total"] < 4:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.5)  # the streams have sent some tokens
            proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(30)
            assert proc.wait(30) == 3
            assert proc.stdout is not None and "interrupted" in proc.stdout.read()
    assert [r.status_code for r in plain] == [503, 503]
    assert all(r.json()["error"]["code"] == "shutting_down" for r in plain)
    assert all(r.headers["x-pointsman-request-id"] for r in plain)
    assert len(streams) == 2
    assert all('"shutting_down"' in s and s.endswith("data: [DONE]\n\n") for s in streams)
    rows = logged(tmp_path / "requests.db")
    assert sorted(r["outcome"] for r in rows) == ["interrupted"] * 4
    streamed = [r for r in rows if r["model"] == "gpt-4.1"]
    assert len(streamed) == 2 and all(r["cost_usd"] > 0 for r in streamed)
    cfg = load_config(config)
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows) and total.held == 0
