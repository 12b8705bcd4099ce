"""Tier-share targets (``router.targets``): the rolling quantiles, the cap, and a
simulation through ``Router.decide`` with a drifting score distribution."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pointsman import LiveState, Router, RouteRequest
from pointsman.config import default_config_data, parse_config
from pointsman.errors import ConfigError
from pointsman.shares.config import TargetsConfig
from pointsman.shares.source import ScoreQuantiles
from pointsman.shares.window import ScoreWindow
from pointsman.signals.base import Signal

REQUEST = RouteRequest.from_prompt("hello")


def router_for(router: dict[str, Any]) -> Router:
    data = default_config_data()
    data["router"] = {**data["router"], **router}
    data["rules"] = []  # config rules are not capped: leave them out here
    return Router(parse_config(data))


def threshold_router(targets: dict[str, Any] | None) -> Router:
    return router_for({"mode": "threshold", "candidates": ["gpt-4o-mini", "gpt-4o"],
                       "strong_model": "gpt-4o", "weak_model": "gpt-4o-mini",
                       "threshold": 0.5, "targets": targets})


def test_window_quantiles_are_exact_over_the_newest_scores() -> None:
    window = ScoreWindow(100)
    for i in range(300):  # 0..299: the window keeps 200..299
        window.add(i / 1000)
    assert len(window) == 100
    assert window.quantile(0.0) == 0.2
    assert window.quantile(0.95) == 0.295  # 5 of the 100 scores are at or above it
    assert window.quantile(1.0) == 0.299
    assert window.thresholds({"premium": 0.95, "mid": 0.75}) == {"premium": 0.295,
                                                                  "mid": 0.275}


def test_window_matches_a_sort_of_the_last_scores_under_random_traffic() -> None:
    rng = random.Random(7)
    window, seen = ScoreWindow(257), []
    for _ in range(3000):
        score = round(rng.random(), 2)  # ties, to exercise removal of equal values
        window.add(score)
        seen.append(score)
    last = sorted(seen[-257:])
    for q in (0.0, 0.1, 0.5, 0.8, 0.95, 0.999):
        assert window.quantile(q) == last[min(256, int(q * 257))]


def test_shares_add_up_from_the_top_tier_down() -> None:
    cfg = TargetsConfig(shares={"premium": 0.05, "mid": 0.20})
    assert cfg.quantiles() == {"premium": pytest.approx(0.95), "mid": pytest.approx(0.75)}


@pytest.mark.parametrize(("targets", "needle"), [
    ({"shares": {"gold": 0.1}}, "unknown tier 'gold'"),
    ({"shares": {"premium": 0.7, "mid": 0.5}}, "add up to more than 1"),
    ({"shares": {"premium": 0.05}, "windows": 3}, "windows"),
])
def test_bad_targets_name_the_field(targets: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        threshold_router(targets)
    assert needle in err.value.message
    assert "targets" in err.value.message


def test_a_weighted_choice_below_its_tier_threshold_moves_to_a_cheaper_tier() -> None:
    router = router_for({"mode": "weighted", "weights": {"quality": 1, "cost": 0, "latency": 0},
                         "candidates": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"],
                         "targets": {"shares": {"premium": 0.05}}})
    hard = Signal(score=80.0)
    free = router.decide(REQUEST, signal=hard)
    assert router.catalog.get(free.model).tier == "premium"
    assert free.threshold is None
    capped = router.decide(REQUEST, LiveState(tier_thresholds={"premium": 0.85}), signal=hard)
    assert capped.model == "gpt-4.1-mini"  # the best-ranked of the cheaper tiers
    assert capped.threshold == 0.85
    assert "premium threshold 0.850 (tier-share target)" in capped.reason
    kept = router.decide(REQUEST, LiveState(tier_thresholds={"premium": 0.8}), signal=hard)
    assert kept.model == free.model and kept.threshold == 0.8


def test_threshold_mode_uses_the_live_threshold_and_records_it() -> None:
    router = threshold_router({"shares": {"premium": 0.05}})
    state = LiveState(tier_thresholds={"premium": 0.8})
    weak = router.decide(REQUEST, state, signal=Signal(score=70.0))
    strong = router.decide(REQUEST, state, signal=Signal(score=85.0))
    assert (weak.model, weak.threshold) == ("gpt-4o-mini", 0.8)
    assert (strong.model, strong.threshold) == ("gpt-4o", 0.8)
    assert "threshold 0.8 (tier-share target)" in strong.reason
    assert strong.to_dict()["threshold"] == 0.8
    # before the window fills (no live thresholds) the configured threshold stands
    assert router.decide(REQUEST, signal=Signal(score=70.0)).model == "gpt-4o"


def simulate(targets: dict[str, Any] | None, n: int = 5000) -> list[bool]:
    """``n`` decisions whose scores drift upwards (mean 0.35 → 0.60); premium or not."""
    router = threshold_router(targets)
    source = ScoreQuantiles(TargetsConfig(**targets)) if targets else None
    rng = random.Random(42)
    premium = []
    for i in range(n):
        score = min(1.0, max(0.0, rng.gauss(0.35 + 0.25 * i / n, 0.12)))
        live = source.current() if source is not None else None
        state = LiveState(tier_thresholds=live) if live else LiveState()
        decision = router.decide(REQUEST, state, signal=Signal(score=score * 100))
        if source is not None:
            source.add(decision.scores["complexity"] / 100)
        premium.append(decision.model == "gpt-4o")
    return premium


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


def test_premium_share_stays_on_target_while_traffic_drifts() -> None:
    held = simulate({"shares": {"premium": 0.05}, "window": 500, "min_samples": 100})
    drifting = simulate(None)
    assert abs(share(held) - 0.05) <= 0.02
    for block in range(1, 5):  # every 1,000 decisions after the first
        assert abs(share(held[block * 1000:(block + 1) * 1000]) - 0.05) <= 0.02
    assert share(drifting[:1000]) < 0.2 < 0.5 < share(drifting[4000:])
