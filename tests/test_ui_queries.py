"""The dashboard's queries give the same answers on SQLite and PostgreSQL: records written
through the real request log stores, labels through the real label stores, then every
aggregate, a filtered page, one record, and the reason kinds the metrics use."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pointsman.gateway.config import RequestLogConfig
from pointsman.requestlog import RequestRecord
from pointsman.stores.labels import Label, open_label_store
from pointsman.stores.requestlog_open import open_request_log
from pointsman.ui.queries import LogReader, prompt_preview

DSN = "postgresql://postgres@127.0.0.1:5432/test"
NOW = time.time()
DECISIONS: list[dict[str, Any]] = [
    {"reason": "score 0.700 >= threshold 0.5: strong model", "rule": None},
    {"reason": "score 0.200 < threshold 0.5: weak model", "rule": None},
    {"reason": "model 'gpt-4.1' requested explicitly", "rule": None},
    {"reason": "rule matched", "rule": "code"},
    {"reason": "complexity 30.0 (chat); best weighted score 0.9", "rule": None},
]


def record(i: int) -> RequestRecord:
    model = ["gpt-4.1", "gpt-4o-mini", "gpt-4.1", "claude-haiku-4-5", "gpt-4o-mini"][i % 5]
    failed = i == 9
    return RequestRecord(
        id=f"q{i}", ts=NOW - 600 + 60 * i, key=f"k{i % 2}", user=f"u{i % 3}", team="core",
        session=None, requested_model="auto", decision=DECISIONS[i % 5],
        models_tried=[model], outcome="error" if failed else "ok",
        error="upstream_error" if failed else None, model=None if failed else model,
        prompt_tokens=10, completion_tokens=20, cost_usd=0.001 * (i + 1),
        baseline_cost_usd=0.02, ttft_ms=None, total_ms=100.0 + i, door="chat",
        messages=[{"role": "user", "content": f"<b>prompt {i}</b>"}])


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
async def reader(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogReader]:
    schema = f"test_ui_{uuid.uuid4().hex[:12]}"
    dsn = DSN if request.param == "postgres" else None
    cfg = RequestLogConfig(sqlite_path=str(tmp_path / "requests.db"), postgres_dsn=dsn,
                           postgres_schema=schema)
    log = await open_request_log(cfg.sqlite_path, dsn, schema)
    for i in range(10):
        await log.write(record(i))
    await log.aclose()
    labels = await open_label_store(cfg.sqlite_path, dsn, schema)
    await labels.put(Label("q0", "user", 1.0, ts=NOW))
    await labels.put(Label("q1", "user", 0.0, ts=NOW))
    await labels.put(Label("q1", "judge", 0.5, model="gpt-4.1", ts=NOW))
    await labels.aclose()
    yield LogReader(cfg)
    if dsn:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.anyio
async def test_totals_and_routing(reader: LogReader) -> None:
    buckets = await reader.totals(NOW - 3600, 60.0)
    assert sum(b["requests"] for b in buckets) == 10
    assert sum(b["failed"] for b in buckets) == 1
    assert sum(b["cost_usd"] for b in buckets) == pytest.approx(0.055)
    assert sum(b["baseline_cost_usd"] for b in buckets) == pytest.approx(0.2)
    assert all(b["t"] % 60 == 0 for b in buckets)
    rows = await reader.routing(NOW - 3600, 60.0)
    kinds: dict[str, int] = {}
    models: dict[str, int] = {}
    for _, model, kind, n in rows:
        kinds[kind] = kinds.get(kind, 0) + n
        models[model] = models.get(model, 0) + n
    assert kinds == {"threshold:strong": 2, "threshold:weak": 2, "explicit": 2,
                     "rule:code": 2, "weighted": 2}
    assert models == {"gpt-4.1": 4, "gpt-4o-mini": 3, "claude-haiku-4-5": 2, "(none)": 1}
    latency = await reader.model_latency(NOW - 3600, 60.0)
    assert {m for _, m, _ in latency} == {"gpt-4.1", "gpt-4o-mini", "claude-haiku-4-5"}


@pytest.mark.anyio
async def test_page_filters_record_and_labels(reader: LogReader) -> None:
    page = await reader.page({}, NOW - 3600, None, 100)
    assert [r["id"] for r in page] == [f"q{i}" for i in range(9, -1, -1)]
    assert page[0]["outcome"] == "error" and page[0]["prompt"] == "<b>prompt 9</b>"
    u1 = await reader.page({"user": "u1", "model": "gpt-4o-mini"}, NOW - 3600, None, 100)
    assert [r["id"] for r in u1] == ["q4", "q1"]
    older = await reader.page({}, NOW - 3600, page[2]["ts"], 3)
    assert [r["id"] for r in older] == ["q6", "q5", "q4"]
    assert await reader.page({"team": "nobody"}, NOW - 3600, None, 10) == []
    choices = await reader.choices(NOW - 3600)
    assert choices["user"] == ["u0", "u1", "u2"] and choices["outcome"] == ["error", "ok"]
    found = await reader.record("q1")
    assert found is not None and found["decision"]["reason"].startswith("score 0.200")
    assert {label["source"] for label in found["labels"]} == {"user", "judge"}
    assert await reader.record("nope") is None
    labels = await reader.labels(NOW - 3600)
    assert {(x["source"], x["model"], x["labels"]) for x in labels} == {
        ("judge", "gpt-4.1", 1), ("user", "gpt-4.1", 1), ("user", "gpt-4o-mini", 1)}
    assert await reader.top_subjects("user", NOW - 3600, 2) == ["u0", "u2"]  # 0.022, 0.018


def test_prompt_preview() -> None:
    assert prompt_preview(None) is None
    assert prompt_preview('[{"role": "user", "content": "hi"}]') == "hi"
    long = [{"role": "user", "content": [{"type": "text", "text": "x" * 500}]}]
    preview = prompt_preview(long)
    assert preview is not None and len(preview) == 160 and preview.endswith("…")
