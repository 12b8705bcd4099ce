"""Stored responses of the Responses door (SQLite, PostgreSQL): a put is visible to the
very next get, another key's id reads as missing, expiry, purge, delete, and the store
sharing the request log's database and migrations; the ``gateway.responses`` config."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pointsman.config import load_config
from pointsman.errors import ConfigError, PointsmanError, StoreUnavailableError
from pointsman.requestlog import RequestLog
from pointsman.stores.requestlog_open import open_request_log, open_response_store
from pointsman.stores.responses import ResponseStore

DSN = "postgresql://postgres@127.0.0.1:5432/test"
Opener = Callable[[], Awaitable[ResponseStore]]
LogOpener = Callable[[], Awaitable[RequestLog]]
ITEMS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "héllo"}]},
    {"type": "message", "role": "assistant",
     "content": [{"type": "output_text", "text": "hi", "annotations": []}]}]


def response(rid: str) -> dict[str, Any]:
    # keys deliberately not in sorted order: what was stored comes back as it was
    return {"id": rid, "object": "response", "status": "completed", "model": "gpt-4.1",
            "output": ITEMS[1:], "usage": {"input_tokens": 3, "output_tokens": 1}}


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
async def openers(request: pytest.FixtureRequest,
                  tmp_path: Path) -> AsyncIterator[tuple[Opener, LogOpener]]:
    """Openers of the response store and of the request log, on one database."""
    path = tmp_path / "requests.db"
    if request.param == "sqlite":
        yield (lambda: open_response_store(path), lambda: open_request_log(path))
        return
    schema = f"test_rs_{uuid.uuid4().hex[:12]}"
    yield (lambda: open_response_store(path, DSN, schema),
           lambda: open_request_log(path, DSN, schema))
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture()
async def store(openers: tuple[Opener, LogOpener]) -> AsyncIterator[ResponseStore]:
    opened = await openers[0]()
    yield opened
    await opened.aclose()


@pytest.mark.anyio
async def test_a_get_right_after_put_sees_it(store: ResponseStore) -> None:
    assert isinstance(store, ResponseStore)
    before = time.time()
    for i in range(20):  # each put is followed at once by a get, as a continuing client
        await store.put(f"resp_{i}", "k1", ITEMS, response(f"resp_{i}"), expires_at=5000.0)
        got = await store.get(f"resp_{i}", "k1", now=1000.0)
        assert got is not None and got.id == f"resp_{i}"
    got = await store.get("resp_7", "k1", now=1000.0)
    assert got is not None
    assert (got.key, got.expires_at, got.items, got.response) == (
        "k1", 5000.0, ITEMS, response("resp_7"))
    assert list(got.response) == list(response("resp_7"))  # key order kept
    assert before <= got.created <= time.time()


@pytest.mark.anyio
async def test_another_store_on_the_same_database_sees_a_put_at_once(
        openers: tuple[Opener, LogOpener], store: ResponseStore) -> None:
    other = await openers[0]()  # another connection, as another gateway process
    await store.put("resp_a", None, ITEMS, response("resp_a"), expires_at=5000.0)
    got = await other.get("resp_a", None, now=1000.0)
    assert got is not None and got.items == ITEMS
    await other.aclose()


@pytest.mark.anyio
async def test_another_keys_response_reads_as_missing(store: ResponseStore) -> None:
    await store.put("resp_k1", "k1", ITEMS, response("resp_k1"), expires_at=5000.0)
    await store.put("resp_open", None, ITEMS, response("resp_open"), expires_at=5000.0)
    assert await store.get("resp_k1", "k2", now=1000.0) is None
    assert await store.get("resp_k1", "K1", now=1000.0) is None  # exact comparison
    assert await store.get("resp_k1", None, now=1000.0) is None
    assert await store.get("resp_open", "k1", now=1000.0) is None  # None matches only None
    assert await store.get("resp_missing", "k1", now=1000.0) is None
    assert await store.get("resp_open", None, now=1000.0) is not None


@pytest.mark.anyio
async def test_a_put_replaces_its_own_response_but_never_another_keys(
        store: ResponseStore) -> None:
    await store.put("resp_1", "k1", ITEMS[:1], {"status": "in_progress"}, expires_at=5000.0)
    await store.put("resp_1", "k1", ITEMS, response("resp_1"), expires_at=6000.0)
    with pytest.raises(PointsmanError, match="another key"):
        await store.put("resp_1", "k2", [], {"stolen": True}, expires_at=7000.0)
    got = await store.get("resp_1", "k1", now=1000.0)
    assert got is not None
    assert (got.items, got.response, got.expires_at) == (ITEMS, response("resp_1"), 6000.0)


@pytest.mark.anyio
async def test_an_expired_response_reads_as_missing_and_purge_removes_it(
        store: ResponseStore) -> None:
    for i, expires_at in enumerate([100.0, 200.0, 300.0]):
        await store.put(f"resp_{i}", "k1", ITEMS, response(f"resp_{i}"), expires_at)
    assert await store.get("resp_1", "k1", now=199.5) is not None
    assert await store.get("resp_1", "k1", now=200.0) is None  # expires_at is exclusive
    assert await store.purge(now=200.0) == 2
    assert await store.purge(now=200.0) == 0
    assert await store.get("resp_0", "k1", now=0.0) is None  # gone, whatever the time
    assert await store.get("resp_2", "k1", now=200.0) is not None


@pytest.mark.anyio
async def test_delete_only_the_keys_own_response(store: ResponseStore) -> None:
    await store.put("resp_1", "k1", ITEMS, response("resp_1"), expires_at=5000.0)
    assert await store.delete("resp_1", "k2") is False
    assert await store.get("resp_1", "k1", now=1000.0) is not None
    assert await store.delete("resp_1", "k1") is True
    assert await store.get("resp_1", "k1", now=1000.0) is None
    assert await store.delete("resp_1", "k1") is False


@pytest.mark.anyio
async def test_shares_the_request_logs_database_either_opened_first(
        openers: tuple[Opener, LogOpener]) -> None:
    open_store, open_log = openers
    store, log = await asyncio.gather(open_store(), open_log())  # both migrate at once
    await store.put("resp_1", "k1", ITEMS, response("resp_1"), expires_at=5000.0)
    await log.aclose()
    await store.aclose()
    log = await open_log()
    store = await open_store()
    assert await store.get("resp_1", "k1", now=1000.0) is not None
    await log.aclose()
    await store.aclose()


@pytest.mark.anyio
async def test_a_closed_store_says_it_is_unavailable(openers: tuple[Opener, LogOpener]
                                                     ) -> None:
    store = await openers[0]()
    await store.aclose()
    with pytest.raises(StoreUnavailableError):
        await store.get("resp_1", "k1", now=1000.0)


def test_responses_config_defaults_and_values(tmp_path: Path) -> None:
    default = load_config().gateway.responses
    assert (default.store, default.ttl_s) == (False, 30 * 24 * 3600.0)
    path = tmp_path / "pointsman.yaml"
    path.write_text("gateway:\n  responses: {store: true, ttl_s: 3600}\n", "utf-8")
    configured = load_config(path).gateway.responses
    assert (configured.store, configured.ttl_s) == (True, 3600.0)


@pytest.mark.parametrize(("text", "field"), [
    ("gateway:\n  responses: {ttl_s: 0}\n", "gateway.responses.ttl_s"),
    ("gateway:\n  responses: {store: maybe}\n", "gateway.responses.store"),
    ("gateway:\n  responses: {keep: true}\n", "gateway.responses.keep"),
])
def test_bad_responses_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "pointsman.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(path)
