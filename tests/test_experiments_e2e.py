"""An online experiment end to end through the gateway with the ``openai`` SDK and the stub:
sticky arms recorded in the log, arm B (routes everything to the cheap model) reported
cheaper with lower quality on hard prompts, the guardrail stopping it and sending its
callers to the control, the same report from ``pointsman experiment report``, per-arm
``/metrics``, and ``Gateway.reload_router`` taking a new threshold without a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from typer.testing import CliRunner

from gateway_harness import running
from pointsman.cli import app
from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import PointsmanError
from pointsman.gateway.app import create_app
from pointsman.gateway.runtime import Gateway
from pointsman.testing.upstream import UpstreamStub

WEAK, STRONG = "gpt-4o-mini", "gpt-4o"
HARD = "Prove the theorem step by step, derive the integral and analyse its complexity"


def write_config(tmp_path: Path, stub: UpstreamStub, **router: Any) -> Path:
    data = {
        "router": {"candidates": [WEAK, STRONG], "mode": "threshold", "strong_model": STRONG,
                   "weak_model": WEAK, "scorer": "heuristic", "threshold": 0.0, **router},
        "rules": [],
        "providers": {
            "endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
            "deployments": {m: [{"endpoint": "stub"}] for m in (WEAK, STRONG)}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0}},
        "budgets": {"store": "memory"},
        "experiments": [{
            "name": "cheap", "unit": "user", "control": "A", "margin": 0.02,
            "arms": [{"name": "A", "share": 0.5},
                     {"name": "B", "share": 0.5, "router": {"threshold": 1.0}}],
            "guardrail": {"min_quality": 0.8, "min_labels": 10, "check_every_s": 3600}}],
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


def ask(client: openai.OpenAI, user: str, text: str) -> tuple[str, str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", user=user, messages=[{"role": "user", "content": text}])
    return (raw.headers["x-pointsman-request-id"], raw.headers["x-pointsman-model"],
            raw.parse().choices[0].message.content or "")


def grade(url: str, rid: str, model: str, hard: bool) -> None:
    """The scripted judge of this test: the cheap model's answers to hard prompts are bad."""
    good = model == STRONG or not hard
    sent = httpx.post(f"{url}/v1/feedback", json={"request_id": rid, "score": 1.0 if good
                                                  else 0.0}, timeout=30)
    assert sent.status_code == 200, sent.text


def traffic(url: str, users: range) -> dict[str, set[str]]:
    """Two prompts per user (one hard), each graded; the models each user got."""
    seen: dict[str, set[str]] = {}
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        for i in users:
            for k, text in enumerate((f"{HARD} #{i}", f"say hello #{i}")):
                rid, model, _ = ask(client, f"u{i}", text)
                seen.setdefault(f"u{i}", set()).add(model)
                grade(url, rid, model, hard=k == 0)
    return seen


def report(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/experiments/cheap", timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_experiment_report_verdict_and_guardrail(stub: UpstreamStub, tmp_path: Path) -> None:
    path = write_config(tmp_path, stub)
    with running(create_app(load_config(path))) as url:
        seen = traffic(url, range(40))
        assert all(len(models) == 1 for models in seen.values())  # sticky per user
        assert {m for ms in seen.values() for m in ms} == {WEAK, STRONG}
        body = report(url)
        arms = {a["arm"]: a for a in body["arms"]}
        assert arms["A"]["requests"] + arms["B"]["requests"] == 80
        assert arms["A"]["strong_share"]["value"] == 1.0
        assert arms["B"]["strong_share"]["value"] == 0.0
        assert arms["B"]["quality"]["value"] == 0.5 and arms["A"]["quality"]["value"] == 1.0
        cost = arms["B"]["cost_per_request_usd"]
        assert cost["ci95"][1] < arms["A"]["cost_per_request_usd"]["ci95"][0]
        assert arms["B"]["savings_vs_strongest"] > 0.5
        [verdict] = body["verdicts"]
        assert verdict.startswith("B is ") and "cheaper than A" in verdict
        assert "quality worse" in verdict
        assert "B" in body["stopped"] and "below the bound 0.8" in body["stopped"]["B"]
        after = traffic(url, range(40, 60))  # B's callers now go to the control
        assert {m for ms in after.values() for m in ms} == {STRONG}
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert 'pointsman_experiment_arm_stopped{arm="B",experiment="cheap"} 1.0' in metrics
        assert 'pointsman_experiment_decisions_total{arm="B",experiment="cheap"' in metrics
    result = CliRunner().invoke(app, ["experiment", "report", "cheap", "--config", str(path),
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["guardrail"].keys() == {"B"} and "cheaper than A" in out["verdicts"][0]
    text = CliRunner().invoke(app, ["experiment", "report", "cheap", "--config", str(path)])
    assert text.exit_code == 0 and "verdict" in text.stdout and "guardrail" in text.stdout


def test_reload_router_takes_a_new_threshold(stub: UpstreamStub, tmp_path: Path) -> None:
    path = write_config(tmp_path, stub)
    application = create_app(load_config(path))
    gw: Gateway = application.state.gateway
    with running(application) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        assert ask(client, "", "say hello")[1] == STRONG  # no user: no arm, threshold 0
        data = yaml.safe_load(path.read_text())
        data["router"]["threshold"] = 1.0
        path.write_text(yaml.safe_dump(data))
        gw.reload_router(load_config(path))
        assert ask(client, "", "say hello")[1] == WEAK
        broken: PointsmanConfig = load_config(path)
        bad = broken.model_copy(update={"router": broken.router.model_copy(
            update={"scorer": "no-such-scorer"})})
        with pytest.raises(PointsmanError, match="no-such-scorer"):
            gw.reload_router(bad)
        assert ask(client, "", "say hello")[1] == WEAK  # unchanged by the failed reload
