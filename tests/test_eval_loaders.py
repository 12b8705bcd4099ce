"""Outcome-data loaders on small files written by the tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pointsman.errors import DataError
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.logs import logged_requests


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _routellm(root: Path) -> Path:
    _write(root / "responses" / "mmlu_anatomy.csv",
           'prompt,weak-m,strong-m\n"Q1, with a comma",False,True\nQ2,True,True\n')
    _write(root / "responses" / "mmlu_virology.csv",
           "prompt,weak-m,strong-m\nQ3,False,False\nQ4,True,False\n")
    return root


def test_routellm_folder_with_contaminated_prompts(tmp_path: Path) -> None:
    root = _routellm(tmp_path / "mmlu")
    _write(root / "contaminated_prompts.jsonl",
           json.dumps({"train_prompt": "x", "eval_prompt": "Q2"}) + "\n\n")
    table = load_table(root, "routellm")
    assert table.prompts == ("Q1, with a comma", "Q3", "Q4")
    assert table.models == ("weak-m", "strong-m")
    assert table.quality.tolist() == [[0, 1], [0, 0], [1, 0]]
    assert table.groups == ("anatomy", "virology", "virology")
    assert table.cost is None
    assert "dropped 1 contaminated" in table.notes[0]
    # the file list found from the responses folder also sees the file one level up
    assert len(load_table(root / "responses", "routellm")) == 3
    # one CSV on its own
    single = load_table(root / "responses" / "mmlu_virology.csv", "routellm")
    assert single.prompts == ("Q3", "Q4")


@pytest.mark.parametrize(("content", "message"), [
    ("question,a,b\nQ,True,False\n", "no 'prompt' column"),
    ("prompt,a\nQ,True\n", "at least two model columns"),
    ("prompt,a,b\nQ,yes,False\n", "expected True or False"),
    ("prompt,a,b\nQ,True\n", "row 2 has 2 cells"),
    ("", "empty"),
])
def test_routellm_bad_files(tmp_path: Path, content: str, message: str) -> None:
    file = _write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError, match=message):
        load_table(file, "routellm")


def test_missing_paths_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "nope", "routellm")
    with pytest.raises(DataError, match=r"no \.csv file"):
        load_table(tmp_path, "routerbench")
    with pytest.raises(DataError, match="no file matches"):
        load_table(str(tmp_path / "*.csv"), "routerbench")
    with pytest.raises(DataError, match="unknown data format"):
        load_table(tmp_path, "parquet")
    bad = _write(tmp_path / "c" / "contaminated_prompts.jsonl", "{not json}\n")
    _write(bad.parent / "x.csv", "prompt,a,b\nQ,True,False\n")
    with pytest.raises(DataError, match="line 1 is not JSON"):
        load_table(bad.parent, "routellm")


RB_HEADER = (",sample_id,prompt,eval_name,m-a,m-b,m-a|model_response,m-b|model_response,"
             "m-a|total_cost,m-b|total_cost,oracle_model_to_route_to\n")


def test_routerbench_scores_costs_and_empty_cells(tmp_path: Path) -> None:
    _write(tmp_path / "rb" / "one.csv", RB_HEADER +
           '0,s0,"P, zero",arc,1.0,0.0,"ans, a",b,0.001,0.01,m-a\n'
           "1,s1,P1,arc,,1.0,,b,0.002,,m-b\n")
    _write(tmp_path / "rb" / "two.csv", RB_HEADER + "0,s2,P2,mbpp,0.5,1.0,a,b,0.001,0.02,m-b\n")
    table = load_table(tmp_path / "rb", "routerbench")
    assert table.models == ("m-a", "m-b") and table.prompts == ("P, zero", "P1", "P2")
    assert table.groups == ("arc", "arc", "mbpp")
    assert table.cost is not None
    assert math.isnan(table.quality[1, 0]) and math.isnan(table.cost[1, 1])
    assert table.quality[2].tolist() == [0.5, 1.0]
    assert table.cost[0].tolist() == [0.001, 0.01]
    assert "1 prompts have a missing score" in table.notes[0]
    globbed = load_table(str(tmp_path / "rb" / "t*.csv"), "routerbench")
    assert globbed.prompts == ("P2",)


def test_routerbench_bad_files(tmp_path: Path) -> None:
    no_cost = _write(tmp_path / "a.csv", "sample_id,prompt,m-a\ns,P,1.0\n")
    with pytest.raises(DataError, match="missing cost columns"):
        load_table(no_cost, "routerbench")
    text = _write(tmp_path / "b.csv", RB_HEADER + "0,s,P,arc,high,0,a,b,0.1,0.1,m-a\n")
    with pytest.raises(DataError, match="not a number"):
        load_table(text, "routerbench")
    _write(tmp_path / "c" / "1.csv", RB_HEADER + "0,s,P,arc,1,0,a,b,0.1,0.1,m-a\n")
    _write(tmp_path / "c" / "2.csv", "sample_id,prompt,m-z,m-z|total_cost\ns,P,1,0.1\n")
    with pytest.raises(DataError, match="differ"):
        load_table(tmp_path / "c", "routerbench")


def _record(prompt: str, model: str, quality: object, cost: float = 0.01,
            outcome: str = "ok") -> str:
    return json.dumps({
        "id": "r", "ts": 1.0, "key": None, "user": None, "team": None, "session": None,
        "requested_model": "auto", "decision": {"model": model, "estimated_cost_usd": cost},
        "models_tried": [model], "outcome": outcome, "error": None, "model": model,
        "prompt_tokens": 5, "completion_tokens": 5, "cost_usd": cost,
        "baseline_cost_usd": 0.1, "ttft_ms": None, "total_ms": 10.0, "stream": False,
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": prompt}],
        "quality": quality})


def test_log_merges_prompts_and_skips_unlabelled(tmp_path: Path) -> None:
    log = _write(tmp_path / "requests.jsonl", "\n".join([
        _record("hello", "small", 1.0, 0.001),
        _record("hello", "big", 1.0, 0.02),
        _record("hello", "small", 0.0, 0.003),
        _record("prove it", "big", {"big": 1.0, "small": 0.25}, 0.05),
        _record("no label", "small", None),
        _record("failed", "small", 1.0, outcome="error"),
    ]) + "\n")
    table = load_table(log, "log")
    assert table.prompts == ("hello", "prove it") and table.models == ("big", "small")
    assert table.quality.tolist() == [[1.0, 0.5], [1.0, 0.25]]
    assert table.cost is not None
    assert table.cost[0].tolist() == pytest.approx([0.02, 0.002])
    assert table.cost[1, 0] == 0.05 and np.isnan(table.cost[1, 1])
    assert "skipped 2 records" in table.notes[1]
    replay = logged_requests(log)
    assert len(replay) == 5 and replay[0].request.last_user_text == "hello"
    assert replay[3].estimated_cost_usd == 0.05


@pytest.mark.parametrize(("line", "message"), [
    ("{oops", "line 1 is not JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"quality": 1.0, "model": "m"}), "no 'messages'"),
    (json.dumps({"quality": 2.0, "model": "m", "prompt": "p"}), "outside"),
    (json.dumps({"quality": "good", "model": "m", "prompt": "p"}), "must be a number"),
    (json.dumps({"quality": 1.0, "prompt": "p"}), "answering 'model'"),
    (json.dumps({"quality": None, "prompt": "p"}), "no record carries a quality label"),
])
def test_log_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_table(_write(tmp_path / "log.jsonl", line + "\n"), "log")
