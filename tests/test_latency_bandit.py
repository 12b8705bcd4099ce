"""Discounted UCB1: cold start, ordering, reward, decay and recovery, memory and Redis."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Mapping

import pytest

from pointsman.config import _merge, default_config_data, parse_config
from pointsman.latency.bandit import (
    Arm,
    BanditChooser,
    BanditStore,
    MemoryBandit,
    discounted,
    reward,
    ucb_order,
    ucb_scores,
)
from pointsman.latency.config import BanditConfig, LatencyConfig, RewardWeights
from pointsman.latency.redis_bandit import RedisBandit, parse_arms
from pointsman.latency.tiers import tier_bonuses
from pointsman.latency.wiring import build_latency
from pointsman.router import Router
from pointsman.state import AttemptOutcome
from pointsman.types import LiveState, RouteRequest
from redis_cluster_support import RedisAt
from redis_support import drop_prefix

REQUEST = RouteRequest.from_prompt("hi")




def attempt(deployment: str, total_ms: float, ok: bool = True, cost: float = 0.001,
            code: str | None = None, model: str = "m") -> AttemptOutcome:
    return AttemptOutcome(model, deployment, ok, code, total_ms, total_ms, 10, 20, cost)


def make(kind: str, discount: float, redis_at: RedisAt) -> BanditStore:
    if kind == "memory":
        return MemoryBandit(discount)
    return RedisBandit(redis_at(kind, f"test:bandit:{uuid.uuid4().hex}:"), discount,
                       cache_s=0.0)


async def close(store: BanditStore) -> None:
    if isinstance(store, RedisBandit):
        await store.aclose()
        drop_prefix(store.prefix)


def test_cold_start_tries_every_arm_in_the_configured_order() -> None:
    assert ucb_order(["a", "b", "c"], {}, 0.3) == ["a", "b", "c"]
    scores = ucb_scores(["a", "b"], {"a": Arm(1.0, 0.9)}, 0.3)
    assert scores["b"] == math.inf and math.isfinite(scores["a"])
    assert ucb_order(["a", "b", "c"], {"a": Arm(1.0, 0.9), "c": Arm(1.0, 0.1)}, 0.3)[0] == "b"
    # one pull in all: ln(1) = 0, no exploration term, no division by zero
    assert ucb_scores(["a"], {"a": Arm(1.0, 0.5)}, 2.0)["a"] == pytest.approx(0.5)


def test_order_is_by_mean_plus_exploration_bonus() -> None:
    stats = {"a": Arm(50.0, 40.0), "b": Arm(50.0, 20.0)}
    assert ucb_order(["b", "a"], stats, 0.3) == ["a", "b"]
    rare = {"a": Arm(500.0, 400.0), "b": Arm(0.5, 0.2)}  # b: worse mean, far fewer pulls
    assert ucb_order(["a", "b"], rare, 0.3) == ["b", "a"]
    assert ucb_order(["a", "b"], rare, 0.0) == ["a", "b"]  # no exploration: greedy


def test_reward_combines_success_latency_and_cost() -> None:
    w = RewardWeights()
    fast, slow = reward(attempt("a", 50.0), w), reward(attempt("a", 500.0), w)
    dear = reward(attempt("a", 50.0, cost=1.0), w)
    assert 0.0 < slow < fast <= 1.0 and dear < fast
    assert reward(attempt("a", 5.0, ok=False, code="upstream_error"), w) == 0.0
    assert reward(attempt("a", 50.0), RewardWeights(success=1, latency=0, cost=0)) == 1.0


def test_discounting_multiplies_every_arm_before_the_pull() -> None:
    after = discounted({"a": Arm(10.0, 5.0), "b": Arm(4.0, 1.0)}, "b", 0.5, 0.9)
    assert after["a"] == Arm(pytest.approx(9.0), pytest.approx(4.5))  # type: ignore[arg-type]
    assert after["b"].pulls == pytest.approx(4.6) and after["b"].reward == pytest.approx(1.4)


@pytest.mark.parametrize("kind", ["memory", "redis", "cluster"])
def test_stores_agree_with_the_pure_update(kind: str, redis_at: RedisAt) -> None:
    pulls = [("a", 0.9), ("b", 0.2), ("a", 0.8), ("a", 1.0), ("b", 0.4)]

    async def go() -> Mapping[str, Arm]:
        store = make(kind, 0.95, redis_at)
        try:
            for arm, value in pulls:
                await store.update("m", arm, value)
            return await store.arms("m")
        finally:
            await close(store)

    expected: dict[str, Arm] = {}
    for arm, value in pulls:
        expected = discounted(expected, arm, value, 0.95)
    got = asyncio.run(go())
    assert set(got) == {"a", "b"}
    for arm in expected:
        assert got[arm].pulls == pytest.approx(expected[arm].pulls, rel=1e-9)
        assert got[arm].reward == pytest.approx(expected[arm].reward, rel=1e-9)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_redis_updates_are_atomic_across_clients(kind: str, redis_at: RedisAt) -> None:
    prefix = f"test:bandit:{uuid.uuid4().hex}:"

    async def go() -> Mapping[str, Arm]:
        one = RedisBandit(redis_at(kind, prefix), 1.0)
        two = RedisBandit(redis_at(kind, prefix), 1.0, cache_s=0)
        try:
            await asyncio.gather(*(store.update("m", "a", 0.5)
                                   for _ in range(100) for store in (one, two)))
            return await two.arms("m")
        finally:
            await one.aclose()
            await two.aclose()
            drop_prefix(prefix)

    arms = asyncio.run(go())
    assert arms["a"].pulls == 200.0 and arms["a"].reward == pytest.approx(100.0)


def test_parse_arms_reads_both_redis_shapes() -> None:
    assert parse_arms({b"n:a": b"2", b"s:a": b"1.5"}) == {"a": Arm(2.0, 1.5)}
    assert parse_arms([b"n:a", b"2", b"s:a", b"1.5"]) == {"a": Arm(2.0, 1.5)}


class Health:
    def __init__(self, down: set[str]) -> None:
        self.down = down

    async def available(self, deployment: str) -> bool:
        return deployment not in self.down


def test_chooser_skips_unavailable_deployments_and_single_arms() -> None:
    store = MemoryBandit(0.99)
    chooser = BanditChooser(store, BanditConfig(), Health({"b"}))
    assert asyncio.run(chooser.order("m", ["a", "b", "c"])) == ["a", "c"]
    assert asyncio.run(chooser.order("m", ["b", "c"])) == ["c"]
    off = BanditChooser(store, BanditConfig(enabled=False))
    assert asyncio.run(off.order("m", ["c", "a"])) == ["c", "a"]


def test_a_deployment_that_failed_then_recovered_is_tried_again() -> None:
    """After 30 failures (reward 0) then a recovery, the deployment gets a steady share of
    the next 60 choices (the discount alone would give it none for hundreds of pulls)."""
    store = MemoryBandit(0.995)
    chooser = BanditChooser(store, BanditConfig(explore_every=20))

    async def go() -> list[str]:
        for _ in range(30):
            await store.update("m", "a", 0.0)
            await store.update("m", "b", 0.9)
        chosen = []
        for _ in range(60):
            arm = (await chooser.order("m", ["a", "b"]))[0]
            chosen.append(arm)
            await store.update("m", arm, 0.9)  # both answer well now
        return chosen
    chosen = asyncio.run(go())
    assert chosen.count("a") >= 3
    never = asyncio.run(BanditChooser(MemoryBandit(0.995), BanditConfig(explore_every=0))
                        .order("m", ["a", "b"]))
    assert never == ["a", "b"]  # untried arms in order; exploration off changes nothing else


def simulate(kind: str, latency: Mapping[str, list[float]], steps: int,
             redis_at: RedisAt, algorithm: str = "ucb1") -> list[str]:
    """Drive chooser + recorder: each step pulls the first arm the chooser gives, with the
    latency of that arm at that step. Redis kinds go through the top-level ``redis``
    section (the store's prefix is the section's plus "latency:")."""
    cfg = LatencyConfig(store="memory" if kind == "memory" else "redis",
                        bandit=BanditConfig(cache_s=0.0, algorithm=algorithm))
    prefix = f"test:bandit:{uuid.uuid4().hex}:"
    redis = None if kind == "memory" else redis_at(kind, prefix)

    async def go() -> list[str]:
        parts = build_latency(cfg, {"m": ["a", "b"]}, rng=random.Random(3), redis=redis)
        chosen: list[str] = []
        try:
            for step in range(steps):
                arm = (await parts.chooser.order("m", ["a", "b"]))[0]
                chosen.append(arm)
                await parts.recorder.record(REQUEST, attempt(arm, latency[arm][step]))
        finally:
            await parts.aclose()
            drop_prefix(prefix)
        return chosen

    return asyncio.run(go())


@pytest.mark.parametrize(("kind", "algorithm"), [
    ("memory", "ucb1"), ("redis", "ucb1"), ("cluster", "ucb1"), ("memory", "thompson")])
def test_slow_arm_loses_traffic_and_wins_it_back_after_recovery(
        kind: str, algorithm: str, redis_at: RedisAt) -> None:
    n = 900
    slow_from, recover_at = 100, 400
    a = [500.0 if slow_from <= i < recover_at else 50.0 for i in range(n)]
    chosen = simulate(kind, {"a": a, "b": [50.0] * n}, n, redis_at, algorithm)
    assert {"a", "b"} <= set(chosen[:2])  # cold start: both tried
    after = chosen[slow_from + 50: slow_from + 250]  # 200 requests, 50 after the slow-down
    assert after.count("b") >= 0.9 * len(after)
    back = chosen[recover_at + 200:]  # after recovery: traffic returns through exploration
    assert back.count("a") >= 0.3 * len(back)


def test_tier_bonuses_favour_the_better_model_of_a_tier_and_explore_the_untried() -> None:
    tiers = {"good": "mid", "bad": "mid", "new": "mid", "solo": "cheap"}
    stats = {"mid": {"good": Arm(50.0, 45.0), "bad": Arm(50.0, 5.0)}}
    bonus = tier_bonuses(tiers, stats, 0.2, 0.2)
    assert bonus["new"] == bonus["solo"] == pytest.approx(0.2)  # never tried: optimistic
    assert 0.0 < bonus["bad"] < bonus["good"] <= 0.2


def test_tier_bandit_tips_the_router_towards_the_model_that_answers_well() -> None:
    data = _merge(default_config_data(), {
        "router": {"candidates": ["gemini-2.5-flash", "claude-haiku-4-5"]}, "rules": [],
        "latency": {"bandit": {"tier_bonus": 0.5}}})
    config = parse_config(data, "tiers.yaml")
    router = Router(config)
    parts = build_latency(config.latency, tiers={m.name: m.tier for m in router.catalog})
    request = RouteRequest.from_prompt("Summarise the plot of Hamlet in two sentences.")

    async def go() -> LiveState:
        for _ in range(30):
            await parts.recorder.record(request, attempt(
                "f@1", 900.0, ok=False, code="upstream_error", model="gemini-2.5-flash"))
            await parts.recorder.record(request, attempt("h@1", 400.0, model="claude-haiku-4-5"))
        return await parts.source.contribute(request, LiveState.empty())

    assert router.decide(request).model == "gemini-2.5-flash"  # cheaper, without the bandit
    state = asyncio.run(go())
    decision = router.decide(request, state)
    assert decision.model == "claude-haiku-4-5"
    bonus = {c.model: c.bonus for c in decision.candidates}
    assert bonus["claude-haiku-4-5"] > bonus["gemini-2.5-flash"] >= 0.0
    off = build_latency(LatencyConfig(), tiers={m.name: m.tier for m in router.catalog})
    assert off.source.tiers is None  # tier_bonus 0: no tier bandit at all
