"""``pointsman calibrate --router cascade-learned|cascade-agreement``: the cascade policy for
a cost cap or a quality floor, cross-validated, written as the gateway's ``cascade``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import openai
import pytest
import yaml
from typer.testing import CliRunner

from gateway_harness import running
from pointsman.cli import app
from pointsman.cli.calibrate_cascade import Gateway, writable
from pointsman.config import load_config
from pointsman.evaluation.cascade_calibrate import Target, expressible
from pointsman.evaluation.cascade_replay import AGREE, NEVER, Policy
from pointsman.gateway.app import create_app
from pointsman.gateway.cascade import load_answer_judge
from pointsman.testing.upstream import UpstreamStub
from test_gateway_cascade import QUESTION, write_config
from test_gateway_cascade_answers import BROKEN, GOOD

GSM8K = Path(__file__).parent / "fixtures" / "routellm_gsm8k"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
RB_HEADER = ("sample_id,prompt,eval_name,a,b,s,a|model_response,b|model_response,"
             "s|model_response,a|total_cost,b|total_cost,s|total_cost\n")
TOY_MODELS = ["--gateway-model", "a=gpt-4.1-nano", "--gateway-model", "b=gpt-4o-mini",
              "--gateway-model", "s=gpt-4.1"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["calibrate", *args])
    return result.exit_code, result.stdout


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pointsman", "calibrate", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def _toy(folder: Path, answers: bool = True) -> Path:
    """RouterBench-style data: two cheap models that agree exactly when they are right
    (70% of prompts), a dear model always right."""
    folder.mkdir()
    right = np.random.default_rng(1).random(80) < 0.7
    rows = [RB_HEADER if answers else "sample_id,prompt,eval_name,a,b,s,a|total_cost,"
            "b|total_cost,s|total_cost\n"]
    for i, ok in enumerate(right):
        said = "A,A,A" if ok else "B,C,A"
        rows.append(f"s{i},question {i},toy,{int(ok)},{int(ok)},1,"
                    + (f"{said}," if answers else "") + "0.001,0.002,0.02\n")
    (folder / "toy.csv").write_text("".join(rows), encoding="utf-8")
    return folder


def test_quality_floor_on_gsm8k_answers_reports_held_out_figures() -> None:
    code, out = invoke("--router", "cascade-learned", "--data", str(GSM8K), "--format",
                       "routellm", "--min-quality", "0.85", "--folds", "2", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["policy"]["chain"] == [WEAK, STRONG]
    assert result["policy"]["judge"] == "learned" and 0 < result["policy"]["threshold"] < 1
    cv = result["cross_validated"]
    assert result["cost_unit"] == "strong_share" and 0 < cv["cost_per_request"] <= 1
    assert len(cv["folds"]) == 2 and 1.0 <= cv["calls_mean"] <= 2.0
    assert cv["relative_quality"] == pytest.approx(cv["quality"] / 0.9375)


def test_learned_cascade_written_with_its_judge_artifact(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("cascade:\n  policies:\n  - {name: code, when: {task_type: [code]}, "
                      "chain: [gpt-4.1-mini, gpt-4.1]}\n", encoding="utf-8")
    args = ["--router", "cascade-learned", "--data", str(GSM8K), "--format", "routellm",
            "--min-quality", "0.85", "--folds", "2", "--write-config", str(config),
            "--gateway-model", f"{WEAK}=gpt-4o-mini", "--gateway-model", f"{STRONG}=gpt-4.1"]
    for _ in range(2):  # a second run replaces its own policy, keeps the user's
        code, out = invoke(*args)
        assert code == 0, out
    cfg = load_config(config).cascade
    assert cfg.enabled and cfg.judge == "learned" and cfg.max_steps == 2
    assert [p.name for p in cfg.policies] == ["code", "calibrated"]
    assert cfg.policies[1].chain == ["gpt-4o-mini", "gpt-4.1"]
    assert cfg.learned is not None and cfg.learned.second_model is None
    assert (tmp_path / "gw-answer-judge.npz").is_file()
    scorer, partner = load_answer_judge(cfg.learned)
    assert partner is None
    assert scorer.score_text("<<2*3=6>>6\n#### 6") > scorer.score_text("<<2*3=7>>7 maybe")
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))["cascade"]
    assert raw["learned"]["artifact"] == "gw-answer-judge.npz"  # relative to the config


def test_agreement_cascade_meets_a_cost_cap_and_is_written(tmp_path: Path) -> None:
    data, config = _toy(tmp_path / "data"), tmp_path / "gw.yaml"
    code, out = invoke("--router", "cascade-agreement", "--data", str(data), "--format",
                       "routerbench", "--max-cost-per-request", "0.015", "--folds", "4",
                       "--write-config", str(config), "--json", *TOY_MODELS)
    assert code == 0, out
    result = json.loads(out)
    assert result["policy"]["judge"] == "agreement" and result["policy"]["partner"] == "b"
    assert result["cross_validated"]["quality"] == 1.0
    assert result["cross_validated"]["cost_per_request"] < 0.015
    cfg = load_config(config).cascade
    assert cfg.agreement is not None and cfg.agreement.second_model == "gpt-4o-mini"
    assert cfg.policies[-1].chain == ["gpt-4.1-nano", "gpt-4.1"] and cfg.judge == "agreement"


@pytest.mark.parametrize(("args", "message"), [
    (["--router", "cascade-learned", "--data", str(GSM8K), "--format", "routellm",
      "--max-cost-per-request", "0.1"], "needs per-call costs"),
    (["--router", "cascade-agreement", "--data", str(GSM8K), "--format", "routellm",
      "--min-quality", "0.9"], "two cheap models"),
    (["--router", "cascade-learned", "--data", str(GSM8K), "--format", "routellm"],
     "exactly one of"),
    (["--router", "heuristic", "--data", str(GSM8K), "--format", "routellm",
      "--min-quality", "0.9"], "for the cascade routers"),
])
def test_clear_errors(args: list[str], message: str) -> None:
    proc = run(*args, "--folds", "2")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_errors_name_what_is_missing(tmp_path: Path) -> None:
    bare = run("--router", "cascade-learned", "--data", str(_toy(tmp_path / "bare", False)),
               "--format", "routerbench", "--max-cost-per-request", "0.01", "--folds", "2")
    assert bare.returncode == 2 and "has none" in bare.stderr
    data = _toy(tmp_path / "data")
    cheap = run("--router", "cascade-agreement", "--data", str(data), "--format",
                "routerbench", "--max-cost-per-request", "0.0005", "--folds", "2")
    assert cheap.returncode == 2
    assert "the cheapest is a at 0.001" in cheap.stderr  # the closest achievable
    unmapped = run("--router", "cascade-agreement", "--data", str(data), "--format",
                   "routerbench", "--max-cost-per-request", "0.015", "--folds", "2",
                   "--write-config", str(tmp_path / "gw.yaml"))
    assert unmapped.returncode == 2 and "--gateway-model 'a=<catalog model>'" in unmapped.stderr
    assert not (tmp_path / "gw.yaml").exists()
    single = run("--router", "cascade-learned", "--data", str(GSM8K), "--format", "routellm",
                 "--min-quality", "1.0", "--folds", "2", "--write-config",
                 str(tmp_path / "gw.yaml"), "--gateway-model", f"{WEAK}=gpt-4o-mini",
                 "--gateway-model", f"{STRONG}=gpt-4.1")
    assert single.returncode == 2 and "one model alone" in single.stderr


def test_when_writing_only_policies_the_catalog_can_run_are_chosen(tmp_path: Path) -> None:
    """With --write-config the choice is among the policies these mappings can express."""
    allowed = writable(Gateway(tmp_path / "gw.yaml", None,
                               {"y": "gpt-4o-mini", "m": "gpt-4.1-mini", "g": "gpt-4.1"}, None))
    models = ("y", "m", "g", "unmapped")
    assert allowed(Policy(0, None, 2, 0.7), models)               # y -> g
    assert allowed(Policy(0, 1, 2, NEVER, AGREE), models)         # partner m above y
    assert not allowed(Policy(1, 0, 2, NEVER, AGREE), models)     # partner y below m
    assert not allowed(Policy(2, None, 0, 0.7), models)           # escalates downwards
    assert not allowed(Policy(0, None, 3, 0.7), models)           # no catalog model
    assert allowed(Policy(1), models) and not allowed(Policy(3), models)


def test_only_policies_the_gateway_runs_are_candidates() -> None:
    assert expressible(Policy(0))
    assert expressible(Policy(0, None, 2, 0.7))
    assert expressible(Policy(0, 1, 2, NEVER, AGREE)) and expressible(Policy(0, 1, 2, NEVER, 0.8))
    assert not expressible(Policy(0, 1, 2, 0.7, AGREE))
    with pytest.raises(Exception, match="exactly one"):
        Target(0.1, 0.9)


def test_the_written_cascade_serves_through_the_gateway(upstream: UpstreamStub,
                                                        tmp_path: Path) -> None:
    config = write_config(tmp_path, upstream, None)
    code, out = invoke("--router", "cascade-learned", "--data", str(GSM8K), "--format",
                       "routellm", "--min-quality", "0.85", "--folds", "2", "--write-config",
                       str(config), "--gateway-model", f"{WEAK}=gpt-4o-mini",
                       "--gateway-model", f"{STRONG}=gpt-4.1")
    assert code == 0, out
    upstream.behave("gpt-4.1", text="The answer is 105.")
    with running(create_app(load_config(config))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        upstream.behave("gpt-4o-mini", text=BROKEN)
        broken = client.chat.completions.with_raw_response.create(model="cascade",
                                                                  messages=QUESTION)
        upstream.behave("gpt-4o-mini", text=GOOD)
        good = client.chat.completions.with_raw_response.create(model="cascade",
                                                                messages=QUESTION)
    assert broken.headers["x-pointsman-cascade-policy"] == "calibrated"
    assert broken.headers["x-pointsman-model"] == "gpt-4.1"
    assert good.headers["x-pointsman-model"] == "gpt-4o-mini"
    assert upstream.requests("gpt-4.1-mini") == 0  # not in the calibrated chain
