"""The gateway's request log database as the lab's dataset: ``eval``, ``calibrate``,
``shadow`` and ``train`` read the SQLite file (``sqlite:///path`` or the bare path) and a
PostgreSQL schema (a DSN) with the feedback labels stored beside the records; without
logged prompts the records keep a prompt hash and the lab says what is missing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from typer.testing import CliRunner

from gateway_harness import running
from pointsman.cli import app
from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import DataError
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.logs import logged_requests
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

KEY = "sk-alice-0123456789"
PG = "postgresql://postgres@127.0.0.1:5432/test"
WEAK, STRONG = "gpt-4o-mini", "gpt-4o"


def config(tmp_path: Path, stub: UpstreamStub, request_log: dict[str, Any]) -> PointsmanConfig:
    data = {
        "router": {"candidates": [WEAK, STRONG], "mode": "threshold", "strong_model": STRONG,
                   "weak_model": WEAK, "scorer": "heuristic", "threshold": 0.5},
        "rules": [],
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "deployments": {m: [{"endpoint": "stub"}] for m in (WEAK, STRONG)}},
        "gateway": {"request_log": request_log, "retry": {"max_retries": 0},
                    "keys": [{"name": "alice", "key": KEY, "user": "alice"}]},
        "budgets": {"store": "memory"},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


def prompt(i: int) -> str:
    hard = i % 3 == 0
    return ("Prove the theorem step by step, derive the integral and analyse its complexity"
            if hard else "say hello") + f" #{i}"


def label_traffic(url: str, n: int = 18) -> None:
    """Each prompt asked of both models; the weak model's answers to hard prompts get a
    thumbs down, every other answer a thumbs up."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client:
        for i in range(n):
            for model in (WEAK, STRONG):
                raw = client.chat.completions.with_raw_response.create(
                    model=model, messages=[{"role": "user", "content": prompt(i)}])
                good = model == STRONG or i % 3 != 0
                sent = httpx.post(f"{url}/v1/feedback", timeout=30,
                                  headers={"authorization": f"Bearer {KEY}"},
                                  json={"request_id": raw.headers["x-pointsman-request-id"],
                                        "thumbs": "up" if good else "down"})
                assert sent.status_code == 200, sent.text


def check_dataset(data: str, tmp_path: Path) -> None:
    table = load_table(data, "log")
    assert len(table) == 18 and set(table.models) == {WEAK, STRONG}
    weak = table.models.index(WEAK)
    assert [table.quality[i, weak] for i in range(3)] == [0.0, 1.0, 1.0]
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--format", "log", "--data", data, "--router",
                                 "heuristic", "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_test"] == 18 and out["kind"] == "two-model"
    result = runner.invoke(app, ["calibrate", "--format", "log", "--data", data,
                                 "--strong-share", "0.34", "--json", "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert 0 < json.loads(result.stdout)["threshold"] <= 1
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text(yaml.safe_dump({"router": {"candidates": [WEAK, STRONG]}, "rules": []}))
    result = runner.invoke(app, ["shadow", "--data", data, "--shadow-config", str(shadow),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_requests"] == 36
    artifact = tmp_path / "knn.npz"
    result = runner.invoke(app, ["train", "--format", "log", "--data", data, "--router", "knn",
                                 "--router-option", "encoder=hashing", "--router-option",
                                 "k=3", "--out", str(artifact)])
    assert result.exit_code == 0, result.output
    assert artifact.is_file()


def test_sqlite_log_is_the_dataset(stub: UpstreamStub, tmp_path: Path) -> None:
    db = tmp_path / "requests.db"
    with running(create_app(config(tmp_path, stub, {"sqlite_path": str(db),
                                                    "log_messages": True}))) as url:
        label_traffic(url)
    check_dataset(f"sqlite:///{db}", tmp_path)
    assert len(load_table(str(db), "log")) == 18  # the bare path of the file works too


def test_postgresql_log_is_the_dataset(stub: UpstreamStub, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_ds_{uuid.uuid4().hex[:12]}"
    cfg = config(tmp_path, stub, {"postgres_dsn": PG, "postgres_schema": schema,
                                  "log_messages": True})
    try:
        with running(create_app(cfg)) as url:
            label_traffic(url)
        check_dataset(f"{PG}#{schema}", tmp_path)
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_prompts_off_keeps_a_hash_and_says_why(stub: UpstreamStub, tmp_path: Path) -> None:
    db = tmp_path / "requests.db"
    with running(create_app(config(tmp_path, stub, {"sqlite_path": str(db)}))) as url:
        label_traffic(url, n=3)
    from pointsman.evaluation.logdb import db_records

    rows = [item for _, _, item in db_records(f"sqlite:///{db}")]
    assert rows[0]["messages"] == []
    assert rows[0]["prompt_hash"] == hashlib.sha256(prompt(0).encode()).hexdigest()
    assert rows[0]["quality"] == {WEAK: 0.0}
    for load in (lambda: load_table(f"sqlite:///{db}", "log"),
                 lambda: logged_requests(f"sqlite:///{db}")):
        with pytest.raises(DataError, match="log_messages: true"):
            load()
    proc = subprocess.run([sys.executable, "-m", "pointsman", "eval", "--format", "log",
                           "--data", str(db)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2 and "log_messages: true" in proc.stderr, proc.stderr
