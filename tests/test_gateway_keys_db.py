"""API keys in the keys database: made with ``pointsman keys add``, accepted by the gateway,
refused after ``pointsman keys revoke``; only their SHA-256 is stored."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from fake_providers import FakeDeployments, ScriptedProvider
from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pointsman", "keys", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_database_keys_add_use_revoke(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"]},
        "gateway": {"keys_db": str(db), "keys_db_reload_s": 0.1,
                    "request_log": {"enabled": False}}}))
    added = cli("add", "bob-key", "--config", str(path), "--user", "bob", "--model", "auto")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("sk-pm-")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT key_sha256 FROM api_keys").fetchone()[0]
    assert key not in stored and len(stored) == 64
    assert "already exists" in cli("add", "bob-key", "--config", str(path)).stderr
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("fake"))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with running(create_app(load_config(path), deps)) as url, httpx.Client(base_url=url) as h:
        auth = {"authorization": f"Bearer {key}"}
        assert h.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
        denied = h.post("/v1/chat/completions", json={**body, "model": "gpt-4o-mini"},
                        headers=auth)
        assert denied.status_code == 403
        assert h.post("/v1/chat/completions", json=body).status_code == 401
        assert cli("revoke", "bob-key", "--config", str(path)).returncode == 0
        time.sleep(0.15)
        refused = h.post("/v1/chat/completions", json=body, headers=auth)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    listed = cli("list", "--config", str(path))
    assert '"revoked": true' in listed.stdout and key not in listed.stdout
