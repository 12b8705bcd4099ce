"""Clients that leave mid-stream lose no charge: the settle and the record happen even when
the request's task is cancelled at that very moment, and ledger = log afterwards."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest
import uvicorn

from budget_gateway_support import ledger_totals, logged, logged_nanos, write_config
from fake_providers import FakeDeployments, ScriptedProvider
from gateway_harness import running
from pointsman.config import load_config
from pointsman.executor import Executor
from pointsman.gateway.app import create_app
from pointsman.gateway.config import RetryConfig
from pointsman.gateway.server import guarded_http
from pointsman.router import resolve_catalog
from pointsman.state import Reservation
from pointsman.testing.upstream import UpstreamStub
from pointsman.types import Decision, RouteRequest


class SlowGuard:
    """A guard whose settle waits until the test lets it go (a slow ledger round trip)."""

    def __init__(self) -> None:
        self.settling = asyncio.Event()
        self.go = asyncio.Event()
        self.settled: list[float] = []

    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float
                      ) -> Reservation:
        return Reservation(model, estimated_usd, ("key:k/day",))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        self.settling.set()
        await self.go.wait()
        self.settled.append(actual_usd)

    async def release(self, reservation: Reservation) -> None:
        raise AssertionError("a stream that answered is settled, not released")


def test_a_cancel_during_the_settle_does_not_lose_the_charge() -> None:
    catalog = resolve_catalog(load_config())
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", text="one two three four"))
    guard = SlowGuard()
    executor = Executor(catalog, deps, guard=guard, retry=RetryConfig(max_retries=0))
    decision = Decision(model="gpt-4o-mini", fallbacks=(), scores={}, reason="t",
                        estimated_cost_usd=0.001, baseline_model="gpt-4o-mini",
                        baseline_cost_usd=0.001, input_tokens=10, output_tokens=10,
                        strategy="t")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> None:
        opened = await executor.stream(RouteRequest.from_prompt("hi"), decision, body)

        async def consume() -> None:
            async for _ in opened.batches():
                pass
        task = asyncio.get_running_loop().create_task(consume())
        await guard.settling.wait()
        task.cancel()  # the client leaves while the charge is on its way to the ledger
        with pytest.raises(asyncio.CancelledError):
            await task
        guard.go.set()
        for _ in range(100):
            if guard.settled:
                break
            await asyncio.sleep(0.01)
        assert opened.cost is not None and guard.settled == [opened.cost.usd]
    asyncio.run(scenario())


async def _leave_after(url: str, body: dict[str, object], nbytes: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client, \
            client.stream("POST", "/v1/chat/completions", json=body) as response:
        got = 0
        async for part in response.aiter_bytes():
            got += len(part)
            if got >= nbytes:
                return  # closing the connection mid-stream


@pytest.mark.parametrize("server", ["uvicorn", "gateway"])
def test_clients_leaving_at_random_points_keep_ledger_equal_to_log(
        upstream: UpstreamStub, tmp_path: Path, server: str) -> None:
    """Under plain uvicorn a task waits for the disconnect; under the gateway's own
    protocol (what ``pointsman serve`` runs) the connection calls the stream back."""
    cfg = write_config(tmp_path, upstream, {
        "store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
        "limits": [{"scope": "global", "limit_usd": 100}]}, candidates=["gpt-4o-mini"])
    upstream.behave("gpt-4o-mini", tokens=40, token_delay_ms=2)
    rng = random.Random(3)
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "Tell me a long story"}]}

    async def many(url: str) -> None:
        await asyncio.gather(*(_leave_after(url, body, rng.randint(1, 4000))
                               for _ in range(40)))
    app = create_app(cfg)
    config = None if server == "uvicorn" else uvicorn.Config(
        app, log_level="error", access_log=False, lifespan="on",
        http=guarded_http(65536, 15.0))
    with running(app, config) as url:
        asyncio.run(many(url))
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == 40
    assert {r["outcome"] for r in rows} <= {"ok", "client_left"}
    assert any(r["outcome"] == "client_left" for r in rows)
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows)
    assert total.held == 0
