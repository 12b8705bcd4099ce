"""LLM-as-router and Redis-shared health in a served gateway (official ``openai`` SDK →
uvicorn → upstream stub): the router's cheap model is called through the gateway's own
deployments, a hanging one falls back to the heuristic; two gateways sharing Redis share
a deployment's cooldown."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import yaml

from budget_gateway_support import ledger_totals, logged
from gateway_harness import running
from pointsman.budget.ledger import to_nanos
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.learned.model_call import ExecutorCall
from pointsman.redis_config import RedisConfig
from pointsman.router import resolve_catalog
from pointsman.testing.upstream import UpstreamStub
from redis_cluster_support import RedisAt
from redis_support import REDIS_URL, drop_prefix

MODELS = ["gpt-4o-mini", "gpt-4.1"]
QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]


def write_config(path: Path, stub: UpstreamStub, router: dict[str, Any],
                 health: dict[str, Any] | None = None,
                 budgets: dict[str, Any] | None = None,
                 shared: dict[str, Any] | None = None) -> Path:
    """``shared``: extra top-level sections (``redis``, ``latency``)."""
    data: dict[str, Any] = {
        "router": {"candidates": MODELS, "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini",
                   "mode": "threshold", "threshold": 0.5,
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1"]}, **router},
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "timeouts": {"connect": 1, "first_token": 1, "total": 2},
            "deployments": {m: [{"endpoint": "stub"}] for m in [*MODELS, "gpt-4.1-nano"]}},
        "gateway": {"request_log": {"sqlite_path": str(path / "requests.db")},
                    "retry": {"max_retries": 0}, "health": health or {}},
        "budgets": budgets or {"store": "memory"},
        **(shared or {}),
    }
    cfg = path / "pointsman.yaml"
    cfg.write_text(yaml.safe_dump(data))
    return cfg


@contextmanager
def served(path: Path, stub: UpstreamStub, router: dict[str, Any],
           health: dict[str, Any] | None = None, shared: dict[str, Any] | None = None,
           ) -> Iterator[tuple[str, openai.OpenAI]]:
    cfg = load_config(write_config(path, stub, router, health, shared=shared))
    with running(create_app(cfg)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        yield url, client


def decisions(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path / "requests.db") as conn:
        return [json.loads(r[0])["decision"] for r in conn.execute("SELECT record FROM requests")]


LLM = {"scorer": "llm", "scorer_options": {"model": "gpt-4.1-nano", "timeout_s": 5}}
CATALOG = resolve_catalog(load_config())
QUICK = {"scorer": "llm", "scorer_options": {"model": "gpt-4.1-nano", "timeout_s": 0.3}}


def test_the_scorer_calls_through_the_gateway_deployments(upstream: UpstreamStub,
                                                          tmp_path: Path) -> None:
    gw = create_app(load_config(write_config(tmp_path, upstream, LLM))).state.gateway
    call = gw.router.scorer.call
    assert isinstance(call, ExecutorCall) and call.executor is gw.executor
    assert call.spec.name == "gpt-4.1-nano"


def test_the_routing_call_is_charged_to_the_caller_and_logged(upstream: UpstreamStub,
                                                              tmp_path: Path) -> None:
    """The LLM-as-router's call goes through the executor: the caller's budget pays for it
    (ledger), and the record and the cost header say the request cost answer + routing."""
    upstream.behave("gpt-4.1-nano", text='{"difficulty": "hard"}')
    budgets = {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
               "limits": [{"scope": "user", "limit_usd": 5.0}]}
    cfg = load_config(write_config(tmp_path, upstream, LLM, budgets=budgets))
    with running(create_app(cfg)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, extra_headers={"x-pointsman-user": "rita"})
        metrics = httpx.get(f"{url}/metrics").text
    (row,) = logged(tmp_path / "requests.db")
    record = json.loads(row["record"])
    routing = record["decision"]["routing_cost_usd"]
    nano = upstream.last_request("gpt-4.1-nano")
    assert nano is not None and routing > 0
    answer = CATALOG.get("gpt-4.1").cost(row["prompt_tokens"], row["completion_tokens"])
    assert row["cost_usd"] == pytest.approx(answer + routing)
    assert float(raw.headers["x-pointsman-cost-usd"]) == pytest.approx(row["cost_usd"])
    counted = re.search(r'^pointsman_routing_cost_usd_total\{strategy="llm/[a-z]+"\} (\S+)$',
                        metrics, re.MULTILINE)
    assert counted is not None and float(counted.group(1)) == pytest.approx(routing)
    total = ledger_totals(cfg, "user:rita")
    assert total.spent == to_nanos(answer) + to_nanos(routing) and total.held == 0


def test_llm_router_decides_through_the_gateway(upstream: UpstreamStub,
                                                tmp_path: Path) -> None:
    upstream.behave("gpt-4.1-nano", text='{"difficulty": "hard"}')
    with served(tmp_path, upstream, LLM) as (_, client):
        first = client.chat.completions.with_raw_response.create(model="auto",
                                                                 messages=QUESTION)
        again = client.chat.completions.with_raw_response.create(model="auto",
                                                                 messages=QUESTION)
    assert first.headers["x-pointsman-model"] == again.headers["x-pointsman-model"] == "gpt-4.1"
    assert upstream.requests("gpt-4.1-nano") == 1  # the second answer came from the cache
    asked = upstream.last_request("gpt-4.1-nano")
    assert asked is not None and asked["temperature"] == 0
    assert asked["response_format"] == {"type": "json_object"}
    assert [d["stage"] for d in decisions(tmp_path)] == ["llm", "llm"]


def test_llm_router_timeout_falls_back_to_the_heuristic(upstream: UpstreamStub,
                                                        tmp_path: Path) -> None:
    upstream.behave("gpt-4.1-nano", hang=True)
    with served(tmp_path, upstream, QUICK) as (_, client):
        answer = client.chat.completions.create(model="auto", messages=QUESTION)
    assert answer.model == "gpt-4o-mini"  # an easy question, by the heuristic
    assert (answer.choices[0].message.content or "").startswith("stub answer from gpt-4o-mini")
    assert [d["stage"] for d in decisions(tmp_path)] == ["llm-fallback:timeout"]


def test_hybrid_llm_stage_uses_the_gateway_provider(upstream: UpstreamStub,
                                                    tmp_path: Path) -> None:
    upstream.behave("gpt-4.1-nano", text='{"difficulty": "easy"}')
    hybrid = {"scorer": "hybrid", "scorer_options": {
        "low": 0, "high": 100, "margin": 101, "embedding": "heuristic",
        "llm_options": {"model": "gpt-4.1-nano", "timeout_s": 5}}}
    with served(tmp_path, upstream, hybrid) as (_, client):
        answer = client.chat.completions.create(model="auto", messages=QUESTION)
    assert answer.model == "gpt-4o-mini"
    assert upstream.requests("gpt-4.1-nano") == 1
    assert [d["stage"] for d in decisions(tmp_path)] == ["llm"]


def sharing(kind: str, prefix: str, redis_at: RedisAt) -> tuple[dict[str, Any],
                                                                  dict[str, Any]]:
    """The health section and the top-level sections of gateways sharing a Redis:
    ``override`` with the older per-store keys (gateway.health.redis_url), ``redis`` and
    ``cluster`` with the top-level ``redis`` section (latency windows and bandit in Redis
    too)."""
    health: dict[str, Any] = {"store": "redis", "consecutive_failures": 2, "cooldown_s": 60,
                              "cache_s": 0}
    if kind == "override":
        return {**health, "redis_url": REDIS_URL, "redis_prefix": prefix}, {}
    section = redis_at(kind, prefix)
    return health, {"redis": {"url": section.url, "cluster": section.cluster,
                              "prefix": prefix},
                    "latency": {"store": "redis"}}


@pytest.mark.parametrize("kind", ["override", "redis", "cluster"])
def test_two_gateways_share_a_cooldown_through_redis(upstream: UpstreamStub, tmp_path: Path,
                                                     kind: str, redis_at: RedisAt) -> None:
    prefix = f"test:health:{uuid.uuid4().hex}:"
    health, shared = sharing(kind, prefix, redis_at)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    upstream.behave("gpt-4o-mini", statuses=[500, 500])
    try:
        with served(tmp_path / "a", upstream, {}, health, shared) as (_, a), \
                served(tmp_path / "b", upstream, {}, health, shared) as (url_b, b):
            for _ in range(2):  # gateway A trips gpt-4o-mini's deployment, falls back
                assert a.chat.completions.create(model="gpt-4o-mini",
                                                 messages=QUESTION).model == "gpt-4.1"
            assert httpx.get(f"{url_b}/health").json()["cooling_down"] == ["gpt-4o-mini"]
            assert b.chat.completions.create(model="auto", messages=QUESTION).model == "gpt-4.1"
        assert upstream.requests("gpt-4o-mini") == 2  # gateway B never called it
        stored = keys_under(redis_at("cluster", "") if kind == "cluster" else None, prefix)
        assert any("{h:" in key for key in stored)  # the breaker lives where configured
    finally:
        drop_prefix(prefix)


def keys_under(cluster: RedisConfig | None, prefix: str) -> list[str]:
    """The keys under ``prefix`` on the cluster, or on the shared Redis when None."""
    client: Any = (redis.RedisCluster.from_url(cluster.url) if cluster is not None
                   else redis.Redis.from_url(REDIS_URL))
    try:
        return [key.decode() for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        client.close()
