"""``pointsman serve`` as a user runs it: bad config and unsafe binds are one line + exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

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


def test_sigterm_drains_in_flight_requests_and_flushes_the_log(tmp_path: Path) -> None:
    import re
    import signal
    import sqlite3
    import threading
    import time

    import httpx

    from pointsman.testing.stub_state import Behavior
    from pointsman.testing.upstream import UpstreamStub

    db = tmp_path / "requests.db"
    with UpstreamStub(default=Behavior(delay_ms=700)) as stub:
        config = tmp_path / "serve.yaml"
        config.write_text(yaml.safe_dump({
            "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]},
            "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                          "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                          "gpt-4.1": [{"endpoint": "stub"}]}},
            "gateway": {"request_log": {"sqlite_path": str(db)}},
            "budgets": {"store": "memory"}}))
        proc = subprocess.Popen([PYTHON, "-m", "pointsman", "serve", "--config", str(config),
                                 "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
            assert found, first + (proc.stderr.read() if proc.stderr else "")
            url = found.group(1)
            deadline = time.monotonic() + 10
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the gateway did not come up"
                    time.sleep(0.02)
            statuses: list[int] = []

            def call(i: int) -> None:
                r = httpx.post(f"{url}/v1/chat/completions", timeout=10, json={
                    "model": "auto", "messages": [{"role": "user", "content": f"hi {i}"}]})
                statuses.append(r.status_code)

            threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            while stub.stats()["total"] < 6:  # every request is in flight upstream
                assert time.monotonic() < deadline + 5
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(10)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    assert statuses == [200] * 6
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT outcome, model FROM requests").fetchall()
    assert sorted(rows) == [("ok", "gpt-4o-mini")] * 6
