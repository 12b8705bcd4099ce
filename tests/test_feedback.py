"""``POST /v1/feedback`` through the gateway with the ``openai`` SDK and the stub: labels
stored with the request (SQLite and PostgreSQL), idempotent per request and source, a key
labels only its own requests (admins any), an unknown id is a 404, labels survive a
restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from gateway_harness import running
from pointsman.config import PointsmanConfig, load_config
from pointsman.gateway.app import create_app
from pointsman.stores.labels_sqlite import SqliteLabelStore
from pointsman.testing.upstream import UpstreamStub

ALICE, BOB, ADMIN = "sk-alice-0123456789", "sk-bob-0123456789", "sk-admin-0123456789"
PG = "postgresql://postgres@127.0.0.1:5432/test"


def config(tmp_path: Path, stub: UpstreamStub, request_log: dict[str, Any]) -> PointsmanConfig:
    data = {
        "router": {"candidates": ["gpt-4o-mini", "gpt-4o"]},
        "rules": [],
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "deployments": {m: [{"endpoint": "stub"}] for m in ("gpt-4o-mini", "gpt-4o")}},
        "gateway": {"request_log": request_log, "retry": {"max_retries": 0},
                    "keys": [{"name": "alice", "key": ALICE, "user": "alice"},
                             {"name": "bob", "key": BOB, "user": "bob"},
                             {"name": "ops", "key": ADMIN, "admin": True}]},
        "budgets": {"store": "memory"},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


def ask(url: str, key: str) -> str:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hello"}])
    return raw.headers["x-pointsman-request-id"]


def feedback(url: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/feedback", json=body,
                      headers={"authorization": f"Bearer {key}"}, timeout=30)


def exercise(url: str) -> str:
    """The ownership and idempotency rules; the id alice's request got."""
    rid = ask(url, ALICE)
    first = feedback(url, ALICE, {"request_id": rid, "thumbs": "down", "comment": "wrong"})
    assert first.status_code == 200, first.text
    assert first.json() == {"object": "feedback", "request_id": rid, "source": "user",
                            "score": 0.0, "comment": "wrong", "replaced": False}
    again = feedback(url, ALICE, {"request_id": rid, "score": 0.75})
    assert again.json()["replaced"] is True and again.json()["score"] == 0.75
    other = feedback(url, BOB, {"request_id": rid, "thumbs": "up"})
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "permission_denied"
    admin = feedback(url, ADMIN, {"request_id": rid, "score": 1, "source": "review"})
    assert admin.status_code == 200 and admin.json()["replaced"] is False
    missing = feedback(url, ALICE, {"request_id": "0" * 32, "score": 1})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "no logged request" in missing.json()["error"]["message"]
    return rid


def test_feedback_sqlite_and_restart(stub: UpstreamStub, tmp_path: Path) -> None:
    db = tmp_path / "requests.db"
    cfg = config(tmp_path, stub, {"sqlite_path": str(db)})
    with running(create_app(cfg)) as url:
        rid = exercise(url)
    store = SqliteLabelStore(db)  # a fresh process's view of the file
    labels = asyncio.run(store.labels(rid))
    asyncio.run(store.aclose())
    assert [(lb.source, lb.score, lb.key) for lb in labels] == [
        ("review", 1.0, "ops"), ("user", 0.75, "alice")]
    with running(create_app(cfg)) as url:  # restarted: the label is there to replace
        replaced = feedback(url, ALICE, {"request_id": rid, "thumbs": "up"})
        assert replaced.json()["replaced"] is True


def test_feedback_bad_input_is_a_clear_400(stub: UpstreamStub, tmp_path: Path) -> None:
    cfg = config(tmp_path, stub, {"sqlite_path": str(tmp_path / "r.db")})
    with running(create_app(cfg)) as url:
        rid = ask(url, ALICE)
        cases: list[tuple[dict[str, Any], str]] = [({"request_id": rid}, "score"),
                 ({"request_id": rid, "score": 1.5}, "score"),
                 ({"request_id": rid, "score": 1, "thumbs": "up"}, "score"),
                 ({"request_id": rid, "thumbs": "sideways"}, "thumbs"),
                 ({"request_id": 5, "score": 1}, "request_id"),
                 ({"request_id": rid, "score": 1, "source": "a b"}, "source"),
                 ({"request_id": rid, "score": 1, "extra": 1}, "extra")]
        for body, param in cases:
            answer = feedback(url, ALICE, body)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["param"] == param
        assert feedback(url, "sk-nobody-000000000", {"request_id": rid, "score": 1}
                        ).status_code == 401


def test_feedback_postgresql(stub: UpstreamStub, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_fb_{uuid.uuid4().hex[:12]}"
    cfg = config(tmp_path, stub, {"postgres_dsn": PG, "postgres_schema": schema})
    try:
        with running(create_app(cfg)) as url:
            rid = exercise(url)
        with psycopg.connect(PG) as conn:
            rows = conn.execute(f'SELECT source, score, key FROM "{schema}".labels '
                                "WHERE request_id = %s ORDER BY source", (rid,)).fetchall()
        assert rows == [("review", 1.0, "ops"), ("user", 0.75, "alice")]
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

