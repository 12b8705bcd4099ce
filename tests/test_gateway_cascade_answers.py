"""The answer-aware cascade judges served by the gateway (the ``openai`` SDK → the gateway
→ the upstream stub): ``agreement`` (a second cheap model answers; its call is paid and
budgeted), ``learned`` (an answer-judge artifact trained here on a small fixture), judge
lists (the first that can judge) and their config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from pointsman.artifacts import read_artifact
from pointsman.cli import app
from pointsman.config import load_config
from pointsman.errors import ConfigError
from pointsman.gateway.app import create_app
from pointsman.learned.answer_judge import AnswerJudgeLearner
from pointsman.testing.upstream import UpstreamStub
from test_gateway_cascade import QUESTION, records, served, write_config

ADMIN = "sk-admin-0123456789"
BUDGETS = {"store": "memory", "admin_keys": [ADMIN]}
AGREE = {"enabled": True, "judge": "agreement", "threshold": 0.5,
         "agreement": {"second_model": "gpt-4.1-mini", "normaliser": "number"}}
GSM8K = Path(__file__).parent / "fixtures" / "routellm_gsm8k"
GOOD = "4*23 = <<4*23=92>>92 pencils.\n92+13 = <<92+13=105>>105.\n#### 105"
BROKEN = "3*6 = <<3*6=19>>19.\n19+27 = <<19+27=46>>46.\n#### 46"


def spent(client: openai.OpenAI) -> float:
    url = str(client.base_url).replace("/v1/", "/v1/spend")
    report = httpx.get(url, headers={"authorization": f"Bearer {ADMIN}"}).json()
    return float(report["spent_usd"])


def test_agreement_accepts_the_cheap_answer_when_the_two_agree(upstream: UpstreamStub,
                                                               tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="Ann has 92 + 13 = 105 pencils.")
    upstream.behave("gpt-4.1-mini", text="#### 105")
    with served(tmp_path, upstream, AGREE, budgets=BUDGETS) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
        total = spent(client)
    assert raw.headers["x-pointsman-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Ann has 92 + 13 = 105 pencils."
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini+gpt-4.1-mini:1.00"
    assert raw.headers["x-pointsman-cascade-policy"] == "default"
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1-mini"
    assert upstream.requests("gpt-4.1-mini") == 1 and upstream.requests("gpt-4.1") == 0
    asked = upstream.last_request("gpt-4.1-mini")  # the same question, not a grading prompt
    assert asked is not None and asked["messages"][-1] == QUESTION[0]
    cost = float(raw.headers["x-pointsman-cost-usd"])
    (record,) = records(tmp_path)
    assert record["models_tried"] == ["gpt-4o-mini", "gpt-4.1-mini"]
    assert record["cost_usd"] == pytest.approx(cost)
    assert total == pytest.approx(cost, rel=1e-6)  # the budget charged both calls


def test_agreement_escalates_past_the_second_model_when_they_differ(
        upstream: UpstreamStub, tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="#### 104")
    upstream.behave("gpt-4.1-mini", text="#### 105")
    upstream.behave("gpt-4.1", text="The answer is 105.")
    with served(tmp_path, upstream, AGREE, budgets=BUDGETS) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
        total = spent(client)
    assert raw.headers["x-pointsman-model"] == "gpt-4.1"
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini+gpt-4.1-mini:0.00>gpt-4.1:-"
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1-mini,gpt-4.1"
    assert upstream.requests("gpt-4.1-mini") == 1  # asked once, never as a step
    cost = float(raw.headers["x-pointsman-cost-usd"])
    assert total == pytest.approx(cost, rel=1e-6)
    (record,) = records(tmp_path)
    assert "cascade@0.5: gpt-4o-mini+gpt-4.1-mini:0.00>gpt-4.1:-" in record["decision"]["reason"]


def test_parallel_agreement_asks_both_at_once_and_pays_both(upstream: UpstreamStub,
                                                            tmp_path: Path) -> None:
    upstream.behave("gpt-4o-mini", text="(B)")
    upstream.behave("gpt-4.1-mini", text="The answer is B.")
    cfg = {**AGREE, "agreement": {"second_model": "gpt-4.1-mini", "normaliser": "choice",
                                  "parallel": True}}
    with served(tmp_path, upstream, cfg, budgets=BUDGETS) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
        total = spent(client)
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini+gpt-4.1-mini:1.00"
    assert total == pytest.approx(float(raw.headers["x-pointsman-cost-usd"]), rel=1e-6)


def test_a_judge_list_falls_through_to_the_next_judge(upstream: UpstreamStub,
                                                      tmp_path: Path) -> None:
    """No number in the cheap answer: agreement cannot judge, self_reported does (and the
    second model is never asked, since it was not started in parallel)."""
    upstream.behave("gpt-4o-mini", text="Maybe Lyon.\nConfidence: 0.3")
    upstream.behave("gpt-4.1-mini", text="Paris.\nConfidence: 0.95")
    cfg = {**AGREE, "judge": ["agreement", "self_reported"], "threshold": 0.7}
    with served(tmp_path, upstream, cfg) as client:
        raw = client.chat.completions.with_raw_response.create(model="cascade",
                                                               messages=QUESTION)
    assert raw.headers["x-pointsman-cascade"] == "gpt-4o-mini:0.30>gpt-4.1-mini:0.95"
    assert raw.parse().choices[0].message.content == "Paris."
    assert upstream.requests("gpt-4.1-mini") == 1


@pytest.fixture
def judge_artifact(tmp_path: Path) -> Path:
    out = tmp_path / "judge.npz"
    result = CliRunner().invoke(app, ["train", "--data", str(GSM8K), "--format", "routellm",
                                      "--router", "answer-judge", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_learned_judge_trained_here_decides_in_the_gateway(
        upstream: UpstreamStub, tmp_path: Path, judge_artifact: Path) -> None:
    learner = read_artifact(judge_artifact).learner
    assert isinstance(learner, AnswerJudgeLearner) and learner.scorer is not None
    good, broken = learner.scorer.score_text(GOOD), learner.scorer.score_text(BROKEN)
    assert broken < good  # arithmetic that does not check: a wrong answer, it learned
    cfg = {"enabled": True, "judge": "learned", "threshold": (good + broken) / 2,
           "learned": {"artifact": str(judge_artifact)}, "max_steps": 2}
    upstream.behave("gpt-4o-mini", text=GOOD)
    with served(tmp_path, upstream, cfg) as client:
        kept = client.chat.completions.with_raw_response.create(model="cascade",
                                                                messages=QUESTION)
        upstream.behave("gpt-4o-mini", text=BROKEN)
        upstream.behave("gpt-4.1-mini", text=GOOD)
        escalated = client.chat.completions.with_raw_response.create(model="cascade",
                                                                     messages=QUESTION)
    assert kept.headers["x-pointsman-cascade"] == f"gpt-4o-mini:{good:.2f}"
    assert escalated.headers["x-pointsman-model"] == "gpt-4.1-mini"
    assert escalated.headers["x-pointsman-cascade"] == \
        f"gpt-4o-mini:{broken:.2f}>gpt-4.1-mini:{good:.2f}"


def test_learned_judge_config_errors_are_clear(upstream: UpstreamStub, tmp_path: Path,
                                               judge_artifact: Path) -> None:
    def build(learned: dict[str, Any] | None) -> None:
        cascade: dict[str, Any] = {"enabled": True, "judge": "learned"}
        if learned is not None:
            cascade["learned"] = learned
        create_app(load_config(write_config(tmp_path, upstream, cascade)))

    with pytest.raises(ConfigError, match=r"cascade\.learned\.artifact: .*missing\.npz: "
                                          r"router artifact not found"):
        build({"artifact": "missing.npz"})
    (tmp_path / "junk.npz").write_text("not an archive")
    with pytest.raises(ConfigError, match=r"cascade\.learned\.artifact: .*not a pointsman"):
        build({"artifact": str(tmp_path / "junk.npz")})
    with pytest.raises(ConfigError, match=r"cascade: .*learned: required"):
        build(None)
    with pytest.raises(ConfigError, match=r"cascade\.learned\.artifct"):
        build({"artifct": "x.npz"})
    with pytest.raises(ConfigError, match=r"trained without a partner"):
        build({"artifact": str(judge_artifact), "second_model": "gpt-4.1-mini"})
    with pytest.raises(ConfigError, match=r"cascade\.agreement\.second_model: unknown model"):
        create_app(load_config(write_config(tmp_path, upstream, {
            "enabled": True, "judge": "agreement", "agreement": {"second_model": "nope"}})))
    with pytest.raises(ConfigError, match=r"cascade\.agreement\.normaliser"):
        load_config(write_config(tmp_path, upstream, {
            "enabled": True, "judge": "agreement",
            "agreement": {"second_model": "gpt-4.1-mini", "normaliser": "roman"}}))
