"""The Redis ledger against real processes: every script's keys in one cluster slot,
fast failure when Redis is down or hung (the circuit), a SIGKILLed process's holds freed
within one lease, and the budget 429 the openai SDK does not retry."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from redis.crc import key_slot

from budget_gateway_support import write_config
from gateway_harness import running
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, Totals
from pointsman.budget.redis_ledger import RedisLedger
from pointsman.config import load_config
from pointsman.errors import StoreUnavailableError
from pointsman.gateway.app import create_app
from pointsman.gateway.errors import retry_after_s
from pointsman.router import resolve_catalog
from pointsman.testing.upstream import UpstreamStub
from pointsman.types import RouteRequest
from redis_support import REDIS_URL, RedisProcess, drop_prefix, free_port

TIERS = {m.name: m.tier for m in resolve_catalog(load_config())}
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture()
def own_redis() -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    proc = RedisProcess(free_port())
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class RecordingLedger(RedisLedger):
    """The real ledger, remembering the KEYS of every script call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, list[str]]] = []

    async def _call(self, script: str, keys: Sequence[str], *args: Any) -> Any:
        self.seen.append((script, list(keys)))
        return await super()._call(script, keys, *args)


@pytest.mark.parametrize("prefix", ["test:slots:{id}:", "test:{slots-{id}}:"])
def test_every_script_keeps_its_keys_in_one_cluster_slot(prefix: str) -> None:
    prefix = prefix.replace("{id}", uuid.uuid4().hex)
    cfg = BudgetsConfig.model_validate({"store": "redis", "alerts": {"thresholds": []},
                                        "limits": [
        {"scope": "key", "limit_usd": 1.0}, {"scope": "user", "limit_usd": 1.0},
        {"scope": "team", "window": "month", "limit_usd": 5.0},
        {"scope": "global", "window": "rolling", "seconds": 3600, "limit_usd": 50.0}]})
    req = RouteRequest.from_prompt("hi", metadata={"key": "k1", "user": "u1", "team": "t1"})

    async def scenario() -> RecordingLedger:
        ledger = RecordingLedger(REDIS_URL, prefix)
        guard = LedgerBudgetGuard(cfg, ledger, TIERS)
        first = await guard.reserve(req, "gpt-4o-mini", 0.01)
        second = await guard.reserve(req, "gpt-4o-mini", 0.01)
        await guard.leases.renew()
        await guard.settle(first, 0.005)
        await guard.release(second)
        totals = [await ledger.totals([a.check.counters], time.time())
                  for a in guard.applicable(req)]
        assert [t[0].spent for t in totals] == [5_000_000] * 4
        assert all(t[0].held == 0 for t in totals)
        await guard.aclose()
        return ledger
    try:
        ledger = asyncio.run(scenario())
    finally:
        drop_prefix(prefix if "{slots-" in prefix else "{" + prefix + "}")
    assert {script for script, _ in ledger.seen} == {
        "reserve", "renew", "settle", "release", "totals"}
    for script, keys in ledger.seen:
        assert len(keys) > 1 and len({key_slot(k.encode()) for k in keys}) == 1, script
        assert all(k.startswith(ledger.base) for k in keys)
    reserve_keys = next(keys for script, keys in ledger.seen if script == "reserve")
    assert any(k.startswith(ledger.base + "c:key:k1:") for k in reserve_keys)
    assert any(k.startswith(ledger.base + "c:global:all:") for k in reserve_keys)


def test_a_down_redis_fails_each_call_fast(own_redis: RedisProcess) -> None:
    async def scenario() -> list[float]:
        ledger = RedisLedger(own_redis.url, "t:")
        await ledger.totals([["x"]], time.time())
        own_redis.stop()
        took = []
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await ledger.totals([["x"]], time.time())
            took.append(time.monotonic() - started)
        await ledger.aclose()
        return took
    assert max(asyncio.run(scenario())) < 0.3


def test_a_hung_redis_opens_the_circuit_then_a_probe_closes_it(
        own_redis: RedisProcess) -> None:
    now = [0.0]

    async def scenario() -> None:
        ledger = RedisLedger(own_redis.url, "t:", socket_timeout_s=0.5, circuit_open_s=5,
                             clock=lambda: now[0])
        await ledger.totals([["x"]], time.time())
        own_redis.freeze()
        with pytest.raises(StoreUnavailableError, match="timed out"):
            await ledger.totals([["x"]], time.time())
        for _ in range(3):  # the circuit is open: no waiting on the socket
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="moments ago"):
                await ledger.totals([["x"]], time.time())
            assert time.monotonic() - started < 0.2
        own_redis.thaw()
        now[0] += 6  # past circuit_open_s: one probe goes through and closes it
        assert await ledger.totals([["x"]], time.time()) == [Totals()]
        assert await ledger.totals([["x"]], time.time()) == [Totals()]
        await ledger.aclose()
    asyncio.run(scenario())


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from pointsman.budget.config import BudgetsConfig
    from pointsman.budget.guard import LedgerBudgetGuard
    from pointsman.budget.redis_ledger import RedisLedger
    from pointsman.types import RouteRequest

    async def main() -> None:
        cfg = BudgetsConfig.model_validate({"store": "redis", "lease_s": 1,
            "alerts": {"thresholds": []}, "limits": [{"scope": "global", "limit_usd": 1}]})
        guard = LedgerBudgetGuard(cfg, RedisLedger(sys.argv[1], "t:"), {})
        await guard.reserve(RouteRequest.from_prompt("hi"), "m", 0.1)
        print("held", flush=True)
        await asyncio.sleep(120)  # a request running upstream; its lease is renewed
    asyncio.run(main())
""")


def test_a_sigkilled_process_frees_its_holds_within_a_lease(own_redis: RedisProcess) -> None:
    """A real process holding a reservation is SIGKILLed: the hold lapses within about
    one lease (1 s here), where it used to stay ten minutes."""
    cfg = BudgetsConfig.model_validate({"store": "redis", "alerts": {"thresholds": []},
                                        "limits": [{"scope": "global", "limit_usd": 1}]})
    guard = LedgerBudgetGuard(cfg, MemoryLedger(), {})  # only to name the counters
    [applied] = guard.applicable(RouteRequest.from_prompt("hi"))

    def held() -> int:
        async def read() -> int:
            ledger = RedisLedger(own_redis.url, "t:")
            [total] = await ledger.totals([applied.check.counters], time.time())
            await ledger.aclose()
            return total.held
        return asyncio.run(read())

    child = subprocess.Popen([sys.executable, "-c", CHILD, own_redis.url],
                             stdout=subprocess.PIPE, env={"PYTHONPATH": str(SRC)})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"held"
        time.sleep(3)  # three leases: only renewals keep it
        assert held() == 120_000_000
        child.kill()
        child.wait(10)
        killed = time.monotonic()
        while held() and time.monotonic() - killed < 30:
            time.sleep(0.2)
        assert held() == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_retry_after_counts_the_seconds_to_the_reset() -> None:
    assert retry_after_s("2030-01-01T00:00:00+00:00", now=1893455940.0) == 60
    assert retry_after_s("2030-01-01T00:00:00+00:00", now=1893456000.5) == 1
    assert retry_after_s(None) is None and retry_after_s("soon") is None


def test_the_openai_sdk_does_not_retry_a_budget_429(tmp_path: Path) -> None:
    sent: list[str] = []
    with UpstreamStub() as stub:
        cfg = write_config(tmp_path, stub, {
            "store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
            "limits": [{"scope": "user", "limit_usd": 0.0}]}, candidates=["gpt-4o-mini"])
        with running(create_app(cfg)) as url, openai.DefaultHttpxClient(event_hooks={
                "request": [lambda r: sent.append(str(r.url))]}) as http, openai.OpenAI(
                base_url=f"{url}/v1", api_key="unused", max_retries=3, http_client=http,
                default_headers={"x-pointsman-user": "zed"}) as client:
            started = time.monotonic()
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "hi"}])
            took = time.monotonic() - started
    assert len(sent) == 1 and took < 5  # raised at once: no retry, no backoff sleep
    headers = caught.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert 1 <= int(headers["retry-after"]) <= 86_400
    assert caught.value.code == "budget_exceeded"
