"""Cascade replay in the lab: answer normalisers, answer columns in the loaders, the
agreement and learned judges replayed with every call paid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pointsman.cli import app
from pointsman.config import load_config
from pointsman.errors import DataError
from pointsman.evaluation.cascade_replay import AGREE, Policy, Signals, execute
from pointsman.evaluation.lab import evaluate, kfold_plan
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.routers import lab_router, router_names
from pointsman.learned import answers as an
from pointsman.learned.answer_judge import AnswerScorer, feature_matrix
from pointsman.learning import OutcomeTable

GSM8K = Path(__file__).parent / "fixtures" / "routellm_gsm8k"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def test_normalisers_read_letters_numbers_and_json() -> None:
    assert an.choice("C\n") == "C"
    assert an.choice("(B)") == "B"
    assert an.choice("Answer: D. Because...") == "D"
    assert an.choice("A long sentence without a letter answer") is None
    assert an.number("So 3 + 4 = <<3+4=7>>7.\n#### 1,234") == "1234"
    assert an.number("The answer is $12.50") == "12.5"
    assert an.json_value('{"b": 1, "a": [2]}') == an.json_value('{ "a": [2], "b": 1 }')
    assert an.auto("B") == "choice:B"
    assert an.auto("#### 42") == "number:42"
    assert an.agree(an.auto("A"), an.auto("(A)"))
    assert not an.agree(None, None)


def test_arithmetic_check_and_hedging() -> None:
    assert an.arithmetic_ok("<<4*23=92>>92 then <<92+13=105>>105") == 1.0
    assert an.arithmetic_ok("<<4*23=93>>93 then <<92+13=105>>105") == 0.5
    assert an.arithmetic_ok("<<9**9**9=1>>") == 0.0  # no powers: nothing to spin on
    assert an.hedging("I think it might be 7, but I'm not sure.") >= 2


def test_routellm_loader_reads_response_columns() -> None:
    table = load_table(GSM8K, "routellm")
    assert table.models == (WEAK, "gpt-4-1106-preview")
    assert table.answers is not None and table.answers.shape == (16, 2)
    assert "####" in str(table.answers[0, 1])
    assert table.subset([1, 2]).answers is not None


def test_routerbench_loader_unwraps_list_literals(tmp_path: Path) -> None:
    header = ("sample_id,prompt,eval_name,m-a,m-b,m-a|model_response,m-b|model_response,"
              "m-a|total_cost,m-b|total_cost\n")
    (tmp_path / "x.csv").write_text(header + "s1,q,t,1.0,0.0,\"['C\\n']\",plain,0.1,0.2\n",
                                    encoding="utf-8")
    table = load_table(tmp_path, "routerbench")
    assert table.answers is not None
    assert list(table.answers[0]) == ["C\n", "plain"]


def test_learned_scorer_separates_checked_from_broken_answers() -> None:
    table = load_table(GSM8K, "routellm")
    assert table.answers is not None
    x = feature_matrix([str(t) for t in table.answers[:, 0]])
    scorer = AnswerScorer.fit(x, table.quality[:, 0])
    p = scorer.score(x)
    right = table.quality[:, 0] == 1.0
    assert p[right].min() > p[~right].max()


def test_two_model_cascade_on_gsm8k_fixture_via_cli() -> None:
    result = CliRunner().invoke(app, ["eval", "--data", str(GSM8K), "--format", "routellm",
                                      "--router", "cascade-learned,random", "--folds", "2",
                                      "--json"])
    assert result.exit_code == 0, result.stdout
    out = {r["router"]: r for r in json.loads(result.stdout)["routers"]}
    assert out["cascade-learned"]["apgr"] > out["random"]["apgr"]


def _three_models(n: int = 60) -> OutcomeTable:
    """Two cheap models that agree exactly when they are right; a strong, dear model."""
    rng = np.random.default_rng(1)
    right = rng.random(n) < 0.7
    quality = np.column_stack([right, right, np.ones(n)]).astype(np.float64)
    answers = np.empty((n, 3), dtype=object)
    for i in range(n):
        answers[i] = ["A", "A", "A"] if right[i] else ["B", "C", "A"]
    cost = np.tile([0.001, 0.002, 0.02], (n, 1))
    return OutcomeTable(tuple(f"q{i}" for i in range(n)), ("a", "b", "s"), quality, cost,
                        ("task",) * n, "toy", (), answers)


def test_execute_pays_every_call() -> None:
    agree = np.array([True, False])
    sig = Signals({}, {}, {(0, 1): agree})
    served, called = execute(Policy(0, 1, 2, paired=AGREE), sig, 2, 3)
    assert served.tolist() == [0, 2]
    assert called.tolist() == [[True, True, False], [True, True, True]]


def test_agreement_replay_reaches_the_strong_quality_cheaper() -> None:
    table = _three_models()
    router = lab_router("cascade-agreement", {}, load_config())
    result = evaluate(router, kfold_plan(table, 3), two_model=False)
    at = result["cascade_at_95%"]
    assert at is not None and at["quality"] == 1.0
    # the cascade pays a and b always, s when they disagree (30% of the time or so)
    assert 0.003 < at["cost"] < 0.02 and at["calls_max"] == 3
    assert 2.0 < at["calls_mean"] < 3.0
    assert "cascade-agreement" in router_names()


def test_cascade_without_answers_is_a_clear_error() -> None:
    table = _three_models()
    bare = OutcomeTable(table.prompts, table.models, table.quality, table.cost, table.groups)
    result = subprocess.run([sys.executable, "-m", "pointsman", "eval", "--data", str(GSM8K),
                             "--format", "routellm", "--router", "cascade-agreement",
                             "--folds", "2"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 2
    assert "cascade-learned" in result.stderr and "Traceback" not in result.stderr
    router = lab_router("cascade-learned", {}, load_config())
    with pytest.raises(DataError, match="has none"):
        router.fit(bare)
