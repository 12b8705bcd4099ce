"""Latency targets through Router.decide: header/metadata targets, use-case presets,
exclude and penalise modes, the fastest when none meets the target, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from pointsman.config import _merge, default_config_data, parse_config
from pointsman.errors import ConfigError, InputError
from pointsman.router import Router
from pointsman.types import LatencyStats, LiveState, RouteRequest

HARD = ("Prove that every finite integral domain is a field, step by step, then implement a "
        "Python function that checks the theorem for Z/pZ and analyze its time complexity.")
LIVE = LiveState(latency={"gpt-4o": LatencyStats(400, 600, 3_000, 50),
                          "gpt-4o-mini": LatencyStats(150, 250, 1_500, 50)})


def router(**latency: Any) -> Router:
    data = _merge(default_config_data(), {
        "router": {"candidates": ["gpt-4o", "gpt-4o-mini"], "fit_scale": 60,
                   "weights": {"quality": 0.8, "cost": 0.1, "latency": 0.1}},
        "rules": [], "latency": latency})
    return Router(parse_config(data, "test.yaml"))


def hard(**meta: Any) -> RouteRequest:
    return RouteRequest.from_prompt(HARD, metadata=meta)


def test_without_a_target_the_hard_request_goes_to_the_strong_model() -> None:
    assert router().decide(hard(), LIVE).model == "gpt-4o"


def test_target_excludes_the_model_whose_p95_exceeds_it() -> None:
    decision = router().decide(hard(latency_target_ms=300), LIVE)
    assert decision.model == "gpt-4o-mini"
    assert "gpt-4o" in decision.filtered_out
    assert "p95 ttft 600 ms (live) > latency target 300 ms" in decision.filtered_out["gpt-4o"]
    assert "300 ms ttft target (request) excluded gpt-4o" in decision.reason


def test_when_none_meets_the_target_the_fastest_is_taken_with_fallbacks() -> None:
    decision = router().decide(hard(latency_target_ms=100), LIVE)
    assert decision.model == "gpt-4o-mini"
    assert decision.fallbacks == ("gpt-4o",)
    assert decision.reason.startswith("no candidate meets the 100 ms ttft target (request): "
                                      "took the fastest, gpt-4o-mini (p95 ttft 250 ms (live))")


def test_penalise_mode_keeps_the_slow_model_with_a_lower_score() -> None:
    strong = router(targets={"mode": "penalise", "penalty": 0.01})
    light = strong.decide(hard(latency_target_ms=300), LIVE)
    assert light.model == "gpt-4o"  # a small penalty does not outweigh the quality gap
    scored = {c.model: c for c in light.candidates}
    assert scored["gpt-4o"].bonus == pytest.approx(-0.01)
    assert scored["gpt-4o-mini"].bonus == 0.0
    assert "penalised gpt-4o by 0.01" in light.reason
    heavy = router(targets={"mode": "penalise", "penalty": 1.0}).decide(
        hard(latency_target_ms=300), LIVE)
    assert heavy.model == "gpt-4o-mini" and not heavy.filtered_out


def test_use_case_presets_select_targets_and_metrics() -> None:
    r = router()
    assert r.decide(hard(use_case="autocomplete"), LIVE).model == "gpt-4o-mini"
    batch = r.decide(hard(use_case="batch"), LIVE)
    assert batch.model == "gpt-4o" and "target" not in batch.reason
    # document_analysis: 5 s on the *total* latency, which both meet
    doc = r.decide(hard(use_case="document_analysis"), LIVE)
    assert doc.model == "gpt-4o" and "every candidate meets the 5000 ms total" in doc.reason
    # an explicit target keeps the preset's metric: 2 s on total excludes gpt-4o (3 s)
    total = r.decide(hard(use_case="document_analysis", latency_target_ms=2_000), LIVE)
    assert total.model == "gpt-4o-mini"
    assert "p95 total 3000 ms" in total.filtered_out["gpt-4o"]


def test_custom_presets_come_from_config() -> None:
    r = router(targets={"use_cases": {"voice": {"target_ms": 300, "metric": "ttft"}}})
    assert r.decide(hard(use_case="voice"), LIVE).model == "gpt-4o-mini"
    with pytest.raises(InputError, match="unknown use_case 'chat'; known: voice"):
        r.decide(hard(use_case="chat"), LIVE)


def test_catalog_latency_is_the_prior_without_live_samples() -> None:
    # catalog: gpt-4o ttft 550 ms, gpt-4o-mini 400 ms
    prior = router().decide(hard(latency_target_ms=450))
    assert prior.model == "gpt-4o-mini"
    assert prior.filtered_out["gpt-4o"] == ("typical ttft 550 ms (catalog) > latency target "
                                            "450 ms")
    no_prior = router(targets={"use_catalog_prior": False})
    assert no_prior.decide(hard(latency_target_ms=450)).model == "gpt-4o"


def test_latency_routing_can_be_switched_off() -> None:
    assert router(enabled=False).decide(hard(latency_target_ms=300), LIVE).model == "gpt-4o"


@pytest.mark.parametrize("bad", [0, -5, "fast", True, float("nan")])
def test_bad_targets_are_input_errors(bad: object) -> None:
    with pytest.raises(InputError, match="latency_target_ms must be a positive number"):
        router().decide(hard(latency_target_ms=bad), LIVE)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"latency.targets.mode"):
        router(targets={"mode": "maybe"})
    with pytest.raises(ConfigError, match=r"latency.bandit.exploration"):
        router(bandit={"exploration": -1})
