"""deploy/compose.yaml's topology as processes: two ``pointsman serve`` replicas sharing a
Redis-backed budget and a PostgreSQL request log, requests alternated between them (what
the compose file's round-robin load balancer does).

What must hold: a global budget is one budget, not one per replica (the Redis ledger), and
every request either replica served or refused lands in the one PostgreSQL log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

from pointsman.testing import UpstreamStub

ROOT = Path(__file__).resolve().parent.parent
DSN = "postgresql://postgres@127.0.0.1:5432/test"
APP_KEY, ADMIN_KEY = "sk-replicas-app", "sk-replicas-admin"
LIMIT_REQUESTS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_config(tmp: Path, stub: UpstreamStub, prefix: str, schema: str) -> Path:
    """What deploy/pointsman.yaml says, pointed at the loopback services and the stub."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "pointsman.yaml").read_text())
    data["gateway"]["host"] = "127.0.0.1"
    data["gateway"]["request_log"] = {"postgres_dsn": DSN, "postgres_schema": schema}
    data["redis"] = {"url": "redis://127.0.0.1:6379/0", "prefix": prefix}
    data["budgets"]["limits"] = [{"scope": "global", "window": "day",
                                  "limit_requests": LIMIT_REQUESTS}]
    data["budgets"]["alerts"] = {"thresholds": []}
    data |= {"router": {"candidates": ["gpt-4o-mini"]}, "rules": [],
             "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                           "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}]}}}
    path = tmp / "replica.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy:\n{log.read_text()[-2000:]}")


@pytest.fixture
def replicas(tmp_path: Path, upstream: UpstreamStub) -> Iterator[tuple[list[str], str]]:
    tag = uuid.uuid4().hex[:10]
    schema, config = f"replicas_{tag}", replica_config(
        tmp_path, upstream, f"pointsman-test-{tag}:", f"replicas_{tag}")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POINTSMAN_APP_KEY": APP_KEY,
           "POINTSMAN_ADMIN_KEY": ADMIN_KEY}
    procs, urls = [], []
    try:
        for i in range(2):
            port, log = free_port(), tmp_path / f"replica-{i}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pointsman", "serve", "--config", str(config),
                     "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(urls[-1], procs[-1], log)
        yield urls, schema
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        try:  # this test's keys only, never a flush
            for key in client.scan_iter(match=f"pointsman-test-{tag}:*", count=500):
                client.delete(key)
        finally:
            client.close()


def ask(url: str, i: int) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {APP_KEY}"},
                      json={"model": "auto", "max_tokens": 16,
                            "messages": [{"role": "user", "content": f"Say hi #{i}"}]})


def test_two_replicas_share_one_budget_and_one_log(
        replicas: tuple[list[str], str]) -> None:
    urls, schema = replicas
    statuses = [ask(urls[i % 2], i).status_code for i in range(LIMIT_REQUESTS + 4)]
    # one global budget across both replicas: exactly LIMIT_REQUESTS answers, then 429s
    assert statuses.count(200) == LIMIT_REQUESTS, statuses
    assert statuses.count(429) == 4, statuses
    assert {statuses[0], statuses[1]} == {200}  # both replicas served
    spend = httpx.get(f"{urls[1]}/v1/spend", timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert spend.status_code == 200, spend.text
    deadline = time.monotonic() + 60  # the log is written in batches: wait for the rows
    rows: list[Any] = []
    while time.monotonic() < deadline:
        with psycopg.connect(DSN) as conn:
            rows = conn.execute(f"SELECT outcome FROM {schema}.requests").fetchall()
        if len(rows) >= len(statuses):
            break
        time.sleep(0.5)
    outcomes = [r[0] for r in rows]
    assert len(outcomes) == len(statuses), outcomes
    assert outcomes.count("ok") == LIMIT_REQUESTS, outcomes
