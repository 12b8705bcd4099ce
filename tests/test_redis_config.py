"""The top-level ``redis`` section: strict keys, generous defaults, the older per-store
keys as overrides, the client factory's choice of client, the ledger refused on a cluster."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from pointsman.budget.config import BudgetsConfig
from pointsman.budget.factory import build_ledger
from pointsman.config import _merge, default_config_data, parse_config
from pointsman.errors import BudgetExceededError, ConfigError
from pointsman.redis_client import PatientCluster, close_client, redis_client
from pointsman.redis_config import RedisConfig
from redis_cluster_support import RedisAt


def parse(extra: dict[str, Any]) -> Any:
    return parse_config(_merge(default_config_data(), extra), "test.yaml")


def test_defaults_are_sized_for_a_busy_host() -> None:
    cfg = parse({}).redis
    assert (cfg.url, cfg.cluster, cfg.socket_timeout_s, cfg.connect_timeout_s) == (
        "redis://127.0.0.1:6379/0", False, 2.0, 2.0)
    assert cfg.prefix == "pointsman:" and cfg.retries == 0


@pytest.mark.parametrize(("section", "says"), [
    ({"urll": "redis://h"}, "test.yaml: redis.urll: unknown key"),
    ({"url": "http://h:6379"}, "redis.url: expected a redis:// or rediss://"),
    ({"prefix": "a{b}"}, "may not contain '{' or '}'"),
    ({"url": "redis://h:7000/3", "cluster": True}, "Redis Cluster has only database 0"),
    ({"socket_timeout_s": 0}, "redis.socket_timeout_s"),
])
def test_bad_values_are_refused_naming_the_key(section: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"redis": section})
    assert says in caught.value.message


def test_the_older_per_store_keys_override_the_section_for_their_store() -> None:
    cfg = parse({"redis": {"url": "redis://node-1:7000", "cluster": True, "prefix": "px:",
                           "socket_timeout_s": 3},
                 "latency": {"redis_prefix": "old:latency:"},
                 "budgets": {"redis_url": "redis://ledger:6379/2", "socket_timeout_s": 0.5}})
    latency = cfg.redis.for_store("latency:", url=cfg.latency.redis_url,
                                  prefix=cfg.latency.redis_prefix,
                                  socket_timeout_s=cfg.latency.socket_timeout_s)
    assert (latency.url, latency.cluster, latency.prefix, latency.socket_timeout_s) == (
        "redis://node-1:7000", True, "old:latency:", 3.0)
    health = cfg.redis.for_store("health:")
    assert health.prefix == "px:health:" and health.cluster
    spend = cfg.redis.for_store("spend:", url=cfg.budgets.redis_url,
                                socket_timeout_s=cfg.budgets.socket_timeout_s)
    # a per-store url keeps its old meaning: one Redis, whatever the section says
    assert (spend.url, spend.cluster, spend.prefix, spend.socket_timeout_s) == (
        "redis://ledger:6379/2", False, "px:spend:", 0.5)


def test_the_factory_builds_a_cluster_client_or_a_pooled_one() -> None:
    async def go() -> tuple[bool, bool, Any]:
        single = redis_client(RedisConfig(socket_timeout_s=3.0))
        cluster = redis_client(RedisConfig(url="redis://127.0.0.1:7000", cluster=True))
        try:  # nothing has connected yet
            assert isinstance(single, Redis)
            timeout = single.connection_pool.connection_kwargs.get("socket_timeout")
            patient = isinstance(cluster, PatientCluster)
            return not isinstance(single, PatientCluster), patient, timeout
        finally:
            await close_client(single)
            await close_client(cluster)

    assert asyncio.run(go()) == (True, True, 3.0)


def test_the_ledger_runs_on_a_cluster_and_never_overspends(redis_at: RedisAt) -> None:
    """The spend ledger on the local 3-master cluster (every key under one hash tag): 120
    concurrent reservations on a $0.06 cap at $0.001 each: never over it, settled exactly,
    nothing left held."""
    from pointsman.budget.guard import LedgerBudgetGuard
    from pointsman.types import RouteRequest

    cfg = BudgetsConfig.model_validate({
        "store": "redis", "alerts": {"thresholds": []},
        "limits": [{"scope": "user", "window": "day", "limit_usd": 0.06}]})
    cluster = redis_at("cluster", f"t-{uuid.uuid4().hex[:8]}:")

    async def scenario() -> tuple[int, int, int]:
        ledger = build_ledger(cfg, redis=cluster)
        guard = LedgerBudgetGuard(cfg, ledger, {"gpt-4o-mini": "cheap"})
        request = RouteRequest.from_prompt("hi", metadata={"user": "alice"})

        async def one() -> int:
            try:
                hold = await guard.reserve(request, "gpt-4o-mini", 0.001)
            except BudgetExceededError:
                return 0
            await guard.settle(hold, 0.001)
            return 1
        try:
            served = sum(await asyncio.gather(*(one() for _ in range(120))))
            applied = guard.applicable(request)
            [total] = await ledger.totals([applied[0].check.counters], guard.clock())
        finally:
            await guard.aclose()
        return served, total.spent, total.held
    served, spent, held = asyncio.run(scenario())
    assert served >= 50 and spent == served * 1_000_000 <= 60_000_000 and held == 0
