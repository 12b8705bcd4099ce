"""Budgets under concurrency and store failures, through real gateways (uvicorn on
127.0.0.1:0) driven by the async ``openai`` SDK against the upstream stub: 200 concurrent
requests against a budget for about 50 (the real Redis, and SQLite), two gateway replicas
sharing the ledger; our own redis-server stopped mid-test (fail-closed, fail-open)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import openai
import pytest

from budget_gateway_support import (
    ledger_totals,
    logged,
    logged_nanos,
    write_config,
)
from gateway_harness import running
from pointsman.budget.ledger import to_nanos
from pointsman.config import PointsmanConfig, load_config
from pointsman.gateway.app import create_app
from pointsman.router import resolve_catalog
from pointsman.testing.upstream import UpstreamStub
from pointsman.tokens import estimate_message_tokens
from pointsman.types import RouteRequest
from redis_support import RedisProcess, drop_prefix, free_port, redis_ledger

CATALOG = resolve_catalog(load_config())
SPEC = CATALOG.get("gpt-4o-mini")
TOKENS = 24
HUNG_TIMEOUT_S = 0.5  # the ledger's timeout in the tests that stop or freeze Redis
PROMPT = "Give me one fact about the moon"
BODY: Any = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}],
             "max_tokens": TOKENS}
RESERVE = to_nanos(SPEC.cost(estimate_message_tokens(
    RouteRequest.from_prompt(PROMPT).messages), TOKENS) * 1.2)  # one request's hold


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture()
def prefix() -> Iterator[str]:
    """A unique key prefix on the shared Redis, its keys deleted afterwards."""
    name = f"pointsman-test:{uuid.uuid4().hex}:"
    yield name
    drop_prefix(name)


async def _hammer(urls: list[str], n: int, width: int) -> list[Any]:
    """``n`` requests, ``width`` in flight at once, spread over the gateway replicas."""
    gate = asyncio.Semaphore(width)
    clients = [openai.AsyncOpenAI(base_url=f"{u}/v1", api_key="unused", max_retries=0,
                                  timeout=30) for u in urls]

    async def one(i: int) -> Any:
        async with gate:
            try:
                return await clients[i % len(clients)].chat.completions.create(**BODY)
            except openai.APIStatusError as exc:
                return exc
    try:
        return await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for client in clients:
            await client.close()


def _max_overlap(rows: list[dict[str, Any]]) -> int:
    """The most requests in flight at once in the gateways, from the request log."""
    edges = sorted([(r["ts"] - r["total_ms"] / 1000, 1) for r in rows] +
                   [(r["ts"], -1) for r in rows])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("store,status", [("redis", 429), ("sqlite", 402)])
def test_200_concurrent_requests_never_overspend(stub: UpstreamStub, tmp_path: Path,
                                                 prefix: str, store: str, status: int) -> None:
    stub.behave("*", tokens=TOKENS, delay_ms=20)
    limit = 50 * RESERVE
    budgets = {"store": store, "sqlite_path": str(tmp_path / "spend.db"),
               "redis_prefix": prefix, "exceeded_status": status,
               # exactness, not speed: CI's busy 2 cores may take seconds to connect 100
               "socket_timeout_s": 10, "connect_timeout_s": 10,
               "limits": [{"scope": "global", "limit_usd": limit / 1e9}]}
    cfgs = [write_config(tmp_path, stub, budgets, candidates=["gpt-4o-mini"],
                         log_name=f"requests-{i}.db") for i in range(2)]
    started = time.monotonic()
    with ExitStack() as stack:  # two gateway replicas sharing one ledger
        urls = [stack.enter_context(running(create_app(cfg))) for cfg in cfgs]
        results = asyncio.run(_hammer(urls, 200, 100))
    elapsed = time.monotonic() - started
    served = [r for r in results if not isinstance(r, openai.APIStatusError)]
    refused = [r for r in results if isinstance(r, openai.APIStatusError)]
    print(f"{store}: {len(served)} served, {len(refused)} refused in {elapsed:.2f}s, "
          f"peak {_max_overlap(logged(tmp_path / 'requests-0.db'))} in flight on replica 0")
    assert 40 <= len(served) <= 70 and len(served) + len(refused) == 200, elapsed
    for exc in refused:
        assert exc.status_code == status and exc.code == "budget_exceeded"
        assert "global:all/day" in exc.message and "resets at" in exc.message
        assert exc.body["budget"] == "global:all/day"  # type: ignore[index]
    rows = [r for i in range(2) for r in logged(tmp_path / f"requests-{i}.db")]
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert len(ok) == len(served)
    assert _max_overlap(rows) >= 20, "the requests did not overlap: not a concurrency test"
    worst_error = max(0, max(to_nanos(r["cost_usd"]) for r in ok) - RESERVE)
    total = ledger_totals(cfgs[0], "global:all")
    assert total.spent == logged_nanos(ok)  # the ledger equals the logged costs exactly
    assert total.spent <= limit + worst_error and total.held == 0


# -- our own Redis stopped mid-test -----------------------------------------------------------

@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    proc = RedisProcess(free_port(), tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _redis_config(tmp_path: Path, stub: UpstreamStub, url: str, mode: str,
                  **extra: Any) -> PointsmanConfig:
    return write_config(tmp_path, stub, {
        "store": "redis", "redis_url": url, "redis_prefix": "t:", "on_store_error": mode,
        # short on purpose: these tests stop or freeze Redis and measure that nobody hangs
        "socket_timeout_s": HUNG_TIMEOUT_S,
        "limits": [{"scope": "global", "limit_usd": 1.0}], **extra},
        candidates=["gpt-4o-mini"])


def test_redis_down_fail_closed_is_a_fast_clear_503(stub: UpstreamStub, tmp_path: Path,
                                                   own_redis: RedisProcess) -> None:
    cfg = _redis_config(tmp_path, stub, own_redis.url, "fail_closed")
    with running(create_app(cfg)) as url, openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10) as client:
        client.chat.completions.create(**BODY)
        own_redis.stop()
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(**BODY)
            assert time.monotonic() - started < 5.0  # short timeouts, never a hang
            assert caught.value.status_code == 503
            assert caught.value.code == "store_unavailable"
            assert "Redis unavailable" in caught.value.message
        own_redis.start()
        client.chat.completions.create(**BODY)
    rows = logged(tmp_path / "requests.db")
    assert ledger_totals(cfg, "global:all").spent == logged_nanos(rows)
    assert [r["outcome"] for r in rows] == ["ok", "error", "error", "ok"]
    assert all(r["error"].startswith("store_unavailable") and r["cost_usd"] == 0
               for r in rows[1:3])


def test_redis_down_fail_open_serves_and_reconciles(stub: UpstreamStub, tmp_path: Path,
                                                    own_redis: RedisProcess,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cfg = _redis_config(tmp_path, stub, own_redis.url, "fail_open")
    caplog.set_level(logging.WARNING, logger="pointsman.budget")
    with running(create_app(cfg)) as url, openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10) as client:
        client.chat.completions.create(**BODY)
        own_redis.stop()
        started = time.monotonic()
        for _ in range(3):
            client.chat.completions.create(**BODY)  # served without a budget check
        assert time.monotonic() - started < 6.0  # refused connections: no waiting
        loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("BUDGET LEDGER UNAVAILABLE" in m for m in loud)
        own_redis.start()
        client.chat.completions.create(**BODY)  # its reservation reconciles the three
        assert any("reconciled" in r.getMessage() for r in caplog.records)
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == 5
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows) and total.held == 0


def test_redis_hung_fail_open_charges_each_request_once(stub: UpstreamStub, tmp_path: Path,
                                                        own_redis: RedisProcess) -> None:
    """A frozen Redis (SIGSTOP) times out; when it wakes it still runs the commands that
    timed out, so a settle retried by the reconciliation must not charge twice."""
    cfg = _redis_config(tmp_path, stub, own_redis.url, "fail_open")
    with running(create_app(cfg)) as url, openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10) as client:
        client.chat.completions.create(**BODY)
        own_redis.freeze()
        started = time.monotonic()
        for _ in range(2):
            client.chat.completions.create(**BODY)
        # the first ledger call gives up after its 0.5 s timeout and opens the circuit:
        # the calls after it fail at once (one probe per circuit_open_s)
        assert time.monotonic() - started < 6.0
        own_redis.thaw()
        time.sleep(cfg.budgets.circuit_open_s + 0.2)  # the circuit lets a probe through
        for _ in range(2):
            client.chat.completions.create(**BODY)
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == 5 and all(r["outcome"] == "ok" for r in rows)
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows)


def test_redis_hung_fail_closed_is_a_fast_503(stub: UpstreamStub, tmp_path: Path,
                                              own_redis: RedisProcess) -> None:
    cfg = _redis_config(tmp_path, stub, own_redis.url, "fail_closed", circuit_open_s=30)
    with running(create_app(cfg)) as url, openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10) as client:
        client.chat.completions.create(**BODY)
        own_redis.freeze()
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(**BODY)
        assert time.monotonic() - started < 5.0  # the 0.5 s timeout, then 503 (not 10 s)
        assert caught.value.status_code == 503 and caught.value.code == "store_unavailable"
        started = time.monotonic()  # the circuit is open: the next one is refused at once
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(**BODY)
        assert time.monotonic() - started < 1.0
        assert caught.value.status_code == 503
        own_redis.thaw()


def test_a_retried_redis_settle_charges_once(prefix: str) -> None:
    from pointsman.budget.ledger import Check, hold_for
    async def scenario() -> tuple[int, int]:
        ledger = redis_ledger(prefix)
        check = Check("global:all/day", "global:all:d", ("global:all:d",), 10**9, None,
                      False, time.time() + 3600)
        try:
            assert await ledger.reserve("tok", [check], 500, time.time(), 60) is None
            hold = hold_for([check], 500)
            for _ in range(2):  # the guard's reconciliation retries a settle that timed out
                await ledger.settle("tok", hold, 400, time.time())
            [total] = await ledger.totals([check.counters], time.time())
        finally:
            await ledger.aclose()
        return total.spent, total.held
    assert asyncio.run(scenario()) == (400, 0)
