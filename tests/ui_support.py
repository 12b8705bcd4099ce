"""A gateway serving stub traffic for the dashboard's tests: keys for an admin and two
users, prompts logged, a handful of requests (weak, strong, failed, and one whose prompt
carries markup that must stay text), and the request log's own figures to compare with."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from pointsman.testing.upstream import UpstreamStub

ADMIN = "admin-key-0123456789"
ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789"
HOSTILE = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
           'what is <b>2+2</b>?')
MODELS = ["gpt-4o-mini", "gpt-4.1", "claude-haiku-4-5"]


def write_config(tmp_path: Path, stub: UpstreamStub, ui: bool = True) -> Path:
    data = {
        "router": {"candidates": MODELS, "strong_model": "gpt-4.1",
                   "weak_model": "gpt-4o-mini",
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1"], "claude-haiku-4-5": ["gpt-4.1"]}},
        "providers": {
            "endpoints": {"stub-openai": {"kind": "openai", "base_url": stub.base_url},
                          "stub-anthropic": {"kind": "anthropic", "base_url": stub.url}},
            "timeouts": {"connect": 2, "first_token": 5, "total": 10},
            "deployments": {"gpt-4o-mini": [{"endpoint": "stub-openai"}],
                            "gpt-4.1": [{"endpoint": "stub-openai"}],
                            "claude-haiku-4-5": [{"endpoint": "stub-anthropic"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db"),
                                    "log_messages": True},
                    "retry": {"max_retries": 0}, "health": {"consecutive_failures": 50},
                    "keys": [{"name": "ops", "key": ADMIN, "admin": True},
                             {"name": "alice", "key": ALICE, "user": "alice", "team": "red"},
                             {"name": "bob", "key": BOB, "user": "bob", "team": "blue"}],
                    "ui": {"enabled": ui}},
        "experiments": [{"name": "stricter", "unit": "user", "control": "A",
                         "arms": [{"name": "A", "share": 0.5},
                                  {"name": "B", "share": 0.5, "router": {"threshold": 0.9}}]}],
        "budgets": {"store": "memory",
                    "limits": [{"scope": "global", "window": "day", "limit_usd": 5.0},
                               {"scope": "user", "window": "day", "limit_usd": 1.0}]},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def chat(url: str, key: str, model: str, text: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}]})


def send_traffic(url: str, stub: UpstreamStub) -> None:
    for i in range(3):
        answer = chat(url, ALICE, "auto", f"What is the capital of France? ({i})")
        assert answer.status_code == 200
    labelled = httpx.post(f"{url}/v1/feedback", timeout=30,
                          headers={"authorization": f"Bearer {ALICE}"},
                          json={"request_id": answer.headers["x-pointsman-request-id"],
                                "thumbs": "up", "comment": "<i>great</i>"})
    assert labelled.status_code == 200, labelled.text
    for i in range(2):
        assert chat(url, BOB, "gpt-4.1", f"Prove the theorem number {i}.").status_code == 200
    assert chat(url, ALICE, "claude-haiku-4-5", HOSTILE).status_code == 200
    stub.behave("gpt-4o-mini", statuses=[500])
    stub.behave("gpt-4.1", statuses=[500])
    assert chat(url, BOB, "gpt-4o-mini", "this one fails").status_code >= 500


def logged(db: Path, timeout_s: float = 30.0, expect: int = 7) -> dict[str, Any]:
    """The request log's own figures (waiting for its background writer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        conn = sqlite3.connect(db)
        try:
            n, cost, base, failed = conn.execute(
                "SELECT COUNT(*), SUM(cost_usd), SUM(baseline_cost_usd), "
                "SUM(outcome != 'ok') FROM requests").fetchone()
            by_user = dict(conn.execute('SELECT "user", COUNT(*) FROM requests GROUP BY "user"'))
            by_model = dict(conn.execute(
                "SELECT COALESCE(model, '(none)'), COUNT(*) FROM requests GROUP BY 1"))
        except sqlite3.OperationalError:
            n = 0
        finally:
            conn.close()
        if n >= expect or time.monotonic() > deadline:
            return {"requests": n, "cost_usd": cost, "baseline_cost_usd": base,
                    "failed": failed, "by_user": by_user, "by_model": by_model}
        time.sleep(0.1)
