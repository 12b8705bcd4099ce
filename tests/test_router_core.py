"""The routing core through its public API: Router.decide with configs and live state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pointsman import BudgetView, LatencyStats, LiveState, Router, RouteRequest, load_config
from pointsman.config import default_config_data, parse_config
from pointsman.errors import (
    ConfigError,
    NoCandidateError,
    NoHealthyCandidateError,
    UnknownModelError,
    http_status,
)


def make_config(tmp_path: Path, data: dict[str, Any]) -> Router:
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return Router(load_config(path))


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_config())


def test_simple_lookup_goes_to_the_cheapest_model(router: Router) -> None:
    decision = router.decide(RouteRequest.from_prompt("What is the capital of France?"))
    cheapest = min(router.candidates, key=lambda s: s.cost(20, 120))
    assert decision.model == cheapest.name
    assert decision.scores["complexity"] < 30
    assert decision.task_type == "lookup"
    assert decision.estimated_cost_usd < decision.baseline_cost_usd
    assert decision.rule is None


def test_hard_request_goes_to_a_model_whose_quality_covers_it(router: Router) -> None:
    prompt = ("Prove that every finite integral domain is a field, step by step, then "
              "implement a Python function that checks the theorem for Z/pZ and analyze "
              "its time complexity.")
    decision = router.decide(RouteRequest.from_prompt(prompt))
    chosen = router.catalog.get(decision.model)
    assert decision.scores["complexity"] >= 70
    assert chosen.quality >= decision.scores["complexity"] - 5
    assert chosen.tier == "premium"
    assert len(decision.fallbacks) == router.config.router.max_fallbacks
    assert decision.model not in decision.fallbacks


def test_decisions_are_deterministic_and_carry_their_inputs(router: Router) -> None:
    request = RouteRequest.from_prompt("Summarize this paragraph into bullet points: ...")
    first, second = router.decide(request), router.decide(request)
    assert first == second
    data = first.to_dict()
    for key in ("model", "fallbacks", "scores", "reason", "estimated_cost_usd", "signals",
                "candidates", "filtered_out", "baseline_cost_usd"):
        assert key in data
    assert 0 <= data["scores"]["complexity"] <= 100


def test_tools_never_go_to_a_model_without_tools(tmp_path: Path) -> None:
    r = make_config(tmp_path, {"router": {"candidates": ["mistral-7b", "gpt-4o-mini"]},
                               "rules": []})
    request = RouteRequest.from_prompt("hi", tools_count=2)
    decision = r.decide(request)
    assert decision.model == "gpt-4o-mini"
    assert "lacks tools" in decision.filtered_out["mistral-7b"]
    without_tools = r.decide(RouteRequest.from_prompt("hi"))
    assert without_tools.model == "mistral-7b"  # free local model wins a greeting


def test_input_never_exceeds_a_context_window(router: Router) -> None:
    long_prompt = "word " * 700_000  # ~875k tokens: only the 1M-window models fit
    decision = router.decide(RouteRequest.from_prompt(long_prompt))
    assert router.catalog.get(decision.model).context_window > decision.input_tokens
    assert decision.rule == "long-input"
    assert "context window" in decision.filtered_out["claude-sonnet-4-5"]


def test_no_candidate_is_a_clear_error(tmp_path: Path) -> None:
    r = make_config(tmp_path, {"router": {"candidates": ["mistral-7b"]}, "rules": []})
    with pytest.raises(NoCandidateError, match="mistral-7b: lacks tools"):
        r.decide(RouteRequest.from_prompt("x", tools_count=1))


def test_every_candidate_cooling_down_is_a_503_not_a_400(router: Router) -> None:
    """The upstreams failing is not the caller's fault: no 400 for it."""
    state = LiveState(cooling_down=frozenset(s.name for s in router.candidates))
    with pytest.raises(NoHealthyCandidateError) as caught:
        router.decide(RouteRequest.from_prompt("hi"), state)
    assert http_status(caught.value) == 503 and "cooling down" in caught.value.message


def test_rules_first_match_wins_and_are_named(router: Router) -> None:
    premium = router.decide(RouteRequest.from_prompt("hi", metadata={"plan": "premium"}))
    assert premium.rule == "premium-plan"
    assert router.catalog.get(premium.model).tier == "premium"
    batch = router.decide(RouteRequest.from_prompt("Write a poem", metadata={"realtime": False}))
    assert batch.rule == "batch-ok"
    assert "batch" in router.catalog.get(batch.model).capabilities
    tools = router.decide(RouteRequest.from_prompt("book a flight", tools_count=9))
    assert tools.rule == "many-tools"


def test_task_type_rule_and_metadata_override(tmp_path: Path) -> None:
    r = make_config(tmp_path, {"rules": [
        {"name": "code-to-sonnet", "when": {"task_type": ["code"]},
         "then": {"model": "claude-sonnet-4-5"}}]})
    detected = r.decide(RouteRequest.from_prompt("Refactor this Python function"))
    assert (detected.model, detected.rule) == ("claude-sonnet-4-5", "code-to-sonnet")
    given = r.decide(RouteRequest.from_prompt("hello", metadata={"task_type": "code"}))
    assert given.rule == "code-to-sonnet"


def test_explicit_model_is_honoured_with_fallbacks(router: Router) -> None:
    decision = router.decide(RouteRequest.from_prompt("hi"), model="gpt-4.1")
    assert decision.model == "gpt-4.1"
    assert decision.fallbacks
    assert all(router.catalog.get(m).tier == "premium" for m in decision.fallbacks)
    with pytest.raises(UnknownModelError):
        router.decide(RouteRequest.from_prompt("hi"), model="gpt-99")


def test_threshold_mode_splits_strong_and_weak(tmp_path: Path) -> None:
    r = make_config(tmp_path, {"router": {"mode": "threshold", "threshold": 0.5,
                                          "strong_model": "gpt-4.1",
                                          "weak_model": "gpt-4o-mini"}})
    assert r.decide(RouteRequest.from_prompt("hello there")).model == "gpt-4o-mini"
    hard = "Prove the theorem by induction and implement the algorithm in Python, step by step."
    assert r.decide(RouteRequest.from_prompt(hard)).model == "gpt-4.1"


def test_live_state_cooldown_budget_and_latency(router: Router) -> None:
    request = RouteRequest.from_prompt("What is 2+2?")
    normal = router.decide(request)
    cooled = router.decide(request, LiveState(cooling_down=frozenset({normal.model})))
    assert cooled.model != normal.model
    assert "cooling down" in cooled.filtered_out[normal.model]
    broke = LiveState(budget=BudgetView("user:u1/day", limit_usd=1.0, spent_usd=0.999))
    hard = RouteRequest.from_prompt("Prove Fermat's little theorem step by step.")
    decision = router.decide(hard, broke)
    assert decision.estimated_cost_usd <= broke.budget.remaining_usd  # type: ignore[union-attr]
    slow = {s.name: LatencyStats(100, 200, 60_000.0, 50) for s in router.candidates}
    slow_state = LiveState(latency={**slow, "gemini-2.5-flash": LatencyStats(10, 20, 50.0, 50)})
    scored = {c.model: c for c in router.decide(request, slow_state).candidates}
    assert scored["gemini-2.5-flash"].latency == 1.0


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"router": {"candidates": []}}, "router.candidates"),
        ({"router": {"candidates": ["gpt-99"]}}, "unknown models ['gpt-99']"),
        ({"router": {"colour": "red"}}, "router.colour: unknown key"),
        ({"catalog": {"models": {"gpt-4o": {"input_price": -1}}}}, "input_price"),
        ({"rules": [{"name": "x", "when": {}, "then": {"model": "nope"}}]}, "not in the catalog"),
        ({"rules": [{"name": "a", "when": {}, "then": {"tier": "cheap"}},
                    {"name": "b", "when": {"plan": ["pro"]}, "then": {"tier": "mid"}}]},
         "can never match"),
        ({"rules": [{"name": "x", "when": {"min_input_tokens": 5_000_000},
                     "then": {"tier": "premium"}}]}, "can never route"),
        ({"rules": [{"name": "x", "when": {"task_type": ["poetry"]},
                     "then": {"tier": "premium"}}]}, "unknown task types"),
        ({"rules": [{"name": "x", "when": {"min_complexity": 80, "max_complexity": 20},
                     "then": {"tier": "premium"}}]}, "can never match"),
        ({"router": {"weights": {"quality": 0, "cost": 0, "latency": 0}}}, "weight"),
    ],
)
def test_bad_configs_are_load_time_errors(tmp_path: Path, patch: dict[str, Any],
                                          message: str) -> None:
    with pytest.raises(ConfigError, match=r"pointsman\.yaml") as info:
        make_config(tmp_path, patch)
    assert message in str(info.value)


def test_config_merges_over_the_default_and_toml_works(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[router]\ncandidates = ["gpt-4o-mini", "gpt-4o"]\n'
                    '[router.weights]\ncost = 0.5\n')
    config = load_config(path)
    assert config.router.weights.cost == 0.5
    assert config.router.weights.quality == 0.6
    assert config.heuristic.groups  # kept from the default
    assert parse_config(default_config_data()).router.scorer == "heuristic"


def test_catalog_override_changes_prices(tmp_path: Path) -> None:
    r = make_config(tmp_path, {"catalog": {"models": {
        "gpt-4o-mini": {"input_price": 100.0},
        "my-local": {"provider": "ollama", "input_price": 0, "output_price": 0,
                     "context_window": 8192, "quality": 20, "tier": "local"}}},
        "router": {"candidates": ["gpt-4o-mini", "my-local", "gpt-4.1-nano"]}, "rules": []})
    assert r.catalog.get("gpt-4o-mini").input_price == 100.0
    assert r.decide(RouteRequest.from_prompt("hello")).model == "my-local"


def test_live_state_replace_keeps_every_field_it_is_not_told_to_change() -> None:
    stats = LatencyStats(p50_ttft_ms=1, p95_ttft_ms=2, p95_total_ms=5, samples=3)
    state = LiveState(latency={"m": stats}, cooling_down=frozenset({"x"}),
                      budget=BudgetView("daily", limit_usd=1.0, spent_usd=0.5),
                      bandit_bonus={"m": 0.1})
    assert state.replace() == state
    assert state.replace(budget=None) == LiveState(
        latency=state.latency, cooling_down=state.cooling_down, bandit_bonus=state.bandit_bonus)
