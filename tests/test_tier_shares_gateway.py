"""Tier-share targets through the gateway: the official ``openai`` SDK → the gateway → the
upstream stub; each decision's threshold in force lands in the request log. Then the
window shared through Redis by two gateways (the shared Redis, a unique prefix, never
flushed: the test deletes its own keys)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.redis_config import RedisConfig
from pointsman.shares.config import TargetsConfig
from pointsman.shares.source import RedisScoreQuantiles
from pointsman.testing.upstream import UpstreamStub
from redis_support import REDIS_URL, drop_prefix

WORDS = ["prove", "optimize", "distributed", "algorithm", "refactor", "concurrency",
         "analyze", "trade-offs", "design", "architecture"]


def prompts(n: int) -> list[str]:
    """Prompts of growing difficulty for the heuristic scorer (distinct scores)."""
    return [f"Please {' '.join(WORDS[: i % len(WORDS) + 1])} " + "and explain " * (i % 7)
            + f"item {i}?" for i in range(n)]


def write_config(tmp_path: Path, stub: UpstreamStub, name: str, targets: dict[str, Any]
                 ) -> Path:
    data = {
        "router": {"mode": "threshold", "candidates": ["gpt-4o-mini", "gpt-4.1"],
                   "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini",
                   "targets": targets},
        "rules": [],
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                            "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / f"{name}.db")}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shared_scores(prefix: str) -> int:
    """How many scores the replicas' shared window in Redis holds."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.llen(prefix + "{q}:scores"))
    finally:
        client.close()


def logged(db: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` decisions of the request log, oldest first (the log is batched)."""
    deadline, rows = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            rows = [json.loads(r[0])["decision"] for r in
                    conn.execute("SELECT record FROM requests ORDER BY ts")]
        if len(rows) >= n:
            break
        time.sleep(0.05)
    return rows


@pytest.fixture()
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


def test_the_request_log_records_the_live_threshold(stub: UpstreamStub,
                                                    tmp_path: Path) -> None:
    targets = {"shares": {"premium": 0.25}, "window": 20, "min_samples": 8}
    app = create_app(load_config(write_config(tmp_path, stub, "one", targets)))
    with running(app) as url, openai.OpenAI(base_url=f"{url}/v1", api_key="unused",
                                            max_retries=0) as client:
        for text in prompts(30):
            client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": text}])
    decisions = logged(tmp_path / "one.db", 30)
    assert len(decisions) == 30
    scores = [d["scores"]["complexity"] / 100 for d in decisions]
    assert len(set(scores)) > 10
    assert all("threshold" not in d for d in decisions[:8])  # the window still filling
    for k in range(8, 30):
        window = sorted(scores[max(0, k - 20):k])
        expected = window[min(len(window) - 1, int(0.75 * len(window)))]
        assert decisions[k]["threshold"] == pytest.approx(expected)
        assert (decisions[k]["model"] == "gpt-4.1") == (scores[k] >= expected)
        assert "(tier-share target)" in decisions[k]["reason"]


def test_two_sources_share_one_window_through_redis() -> None:
    prefix = f"pointsman-test:{uuid.uuid4().hex}:"
    cfg = TargetsConfig(shares={"premium": 0.1}, window=50, min_samples=10, store="redis")
    redis = RedisConfig(url=REDIS_URL, prefix=prefix)

    async def run() -> None:
        a, b = RedisScoreQuantiles(cfg, redis), RedisScoreQuantiles(cfg, redis)
        try:
            for i in range(60):
                a.add(i / 100)
            await a.sync()
            await b.sync()
            assert b.current() == a.current() == {"premium": 0.55}  # 10..59: top 10%
            b.add(0.99)
            await b.sync()
            await a.sync()
            assert a.window.quantile(1.0) == 0.99 and len(a.window) == 50
        finally:
            await a.aclose()
            await b.aclose()
    try:
        asyncio.run(run())
    finally:
        drop_prefix(prefix)


def test_two_gateways_share_the_threshold_through_redis(stub: UpstreamStub,
                                                        tmp_path: Path) -> None:
    prefix = f"pointsman-test:{uuid.uuid4().hex}:"
    targets = {"shares": {"premium": 0.2}, "window": 100, "min_samples": 10,
               "store": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix,
               "refresh_s": 0}
    first = create_app(load_config(write_config(tmp_path, stub, "a", targets)))
    second = create_app(load_config(write_config(tmp_path, stub, "b", targets)))
    try:
        with running(first) as url_a, running(second) as url_b, \
                openai.OpenAI(base_url=f"{url_a}/v1", api_key="u", max_retries=0) as a, \
                openai.OpenAI(base_url=f"{url_b}/v1", api_key="u", max_retries=0) as b:
            for text in prompts(200):  # each decision pushes the scores before it, in a
                a.chat.completions.create(  # background sync: until 15 are in Redis
                    model="auto", messages=[{"role": "user", "content": text}])
                if shared_scores(prefix) >= 15:
                    break
            assert shared_scores(prefix) >= 15
            for text in prompts(5):  # fewer than min_samples of its own
                b.chat.completions.create(model="auto",
                                          messages=[{"role": "user", "content": text}])
    finally:
        drop_prefix(prefix)
    seen = logged(tmp_path / "b.db", 5)
    assert len(seen) == 5
    assert all("threshold" in d for d in seen)  # B decides on A's scores from the start
