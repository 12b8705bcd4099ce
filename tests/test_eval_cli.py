"""``pointsman eval``, ``calibrate`` and ``shadow`` as a user runs them (subprocesses, and
in-process through typer's CliRunner for the readable output)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pointsman.cli import app

RB_HEADER = (",sample_id,prompt,eval_name,m-a,m-b,m-c,m-a|model_response,m-b|model_response,"
             "m-c|model_response,m-a|total_cost,m-b|total_cost,m-c|total_cost,"
             "oracle_model_to_route_to\n")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pointsman", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def run_in_process(*args: str) -> tuple[int, str]:
    """The same command in-process (faster), for output checks that need no exit-2 path."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def _routellm(folder: Path) -> Path:
    folder.mkdir()
    rows = ["prompt,weak-m,strong-m"]
    for i in range(40):
        hard = i % 4 == 0
        prompt = ("Prove the theorem step by step and derive the integral"
                  if hard else "hi there") + f" #{i}"
        rows.append(f"{prompt},{not hard},{i % 10 != 1}")
    (folder / "mmlu_toy.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def _routerbench(folder: Path) -> Path:
    folder.mkdir()
    rows = []
    for i in range(30):
        hard = i % 3 == 0
        prompt = "Write a python function and prove it" if hard else "say hello"
        q = (0.0, 0.5, 1.0) if hard else (1.0, 1.0, 1.0)
        rows.append(f"{i},s{i},{prompt} {i},toy,{q[0]},{q[1]},{q[2]},a,b,c,0.001,0.004,0.02,m-c")
    (folder / "toy.csv").write_text(RB_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_two_model_json_plot_and_report(tmp_path: Path) -> None:
    data = _routellm(tmp_path / "data")
    plot, report = tmp_path / "out" / "curve.png", tmp_path / "report.md"
    proc = run("eval", "--data", str(data), "--format", "routellm", "--router", "heuristic",
               "--folds", "4", "--json", "--plot", str(plot), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("protocol", "n_test", "router", "models", "curve", "apgr", "cpt20", "cpt50",
                "cpt80", "random", "oracle", "weak", "strong", "auc"):
        assert key in out, key
    assert out["protocol"] == "4-fold cross-validation (seed 0)" and out["n_test"] == 40
    assert out["models"] == ["weak-m", "strong-m"]
    assert {"quality", "strong_share"} <= set(out["curve"][0])
    assert out["auc"] > 0.9  # the hard prompts are the ones only the strong model gets right
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Router evaluation") and "| heuristic |" in text
    assert "4-fold cross-validation" in text


def test_many_model_comparison_and_readable_output(tmp_path: Path) -> None:
    data = _routerbench(tmp_path / "rb")
    proc = run("eval", "--data", str(data), "--format", "routerbench",
               "--router", "heuristic,always-strong", "--json", "--budget", "0.005")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["router"] for r in out["routers"]] == ["heuristic", "always-strong"]
    first = out["routers"][0]
    for key in ("protocol", "n_test", "models", "curve", "aiq", "pareto", "singles", "oracle"):
        assert key in first, key
    assert {"quality", "cost"} <= set(first["curve"][0])
    assert first["quality_within_budget"][0]["budget"] == 0.005
    code, text = run_in_process("eval", "--data", str(data), "--format", "routerbench",
                                "--folds", "3")
    assert code == 0, text
    assert "AIQ" in text and "3-fold" in text


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        run("eval", "--data", str(tmp_path / "missing"), "--format", "routellm"),
        run("eval", "--data", str(tmp_path), "--format", "parquet"),
        run("eval", "--data", str(_routellm(tmp_path / "d")), "--router", "no-such-router"),
        run("eval", "--train", str(tmp_path / "d")),
        run("calibrate", "--data", str(tmp_path / "d"), "--strong-share", "0.3",
            "--router", "always-weak"),
    ]
    for proc in cases:
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pointsman: error:"), proc.stderr


def test_calibrate_prints_and_writes_the_threshold(tmp_path: Path) -> None:
    data = _routellm(tmp_path / "data")
    config = tmp_path / "gw.yaml"
    config.write_text("router:\n  candidates: [gpt-4o-mini, gpt-4.1]\n"
                      "  strong_model: gpt-4.1\n  weak_model: gpt-4o-mini\n", encoding="utf-8")
    proc = run("calibrate", "--router", "heuristic", "--data", str(data), "--format",
               "routellm", "--strong-share", "0.25", "--json", "--write-config", str(config))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["strong_share"] == 0.25 and 0 < out["threshold"] <= 1
    router = yaml.safe_load(config.read_text(encoding="utf-8"))["router"]
    assert router["threshold"] == round(out["threshold"], 6)
    assert router["mode"] == "threshold" and router["scorer"] == "heuristic"
    assert router["strong_model"] == "gpt-4.1"
    code, text = run_in_process("calibrate", "--data", str(data), "--strong-share", "0.5")
    assert code == 0 and "router-heuristic-" in text


def test_shadow_replay_command(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps({
        "outcome": "ok", "model": "gpt-4.1", "cost_usd": 0.01,
        "decision": {"model": "gpt-4.1", "estimated_cost_usd": 0.01},
        "messages": [{"role": "user", "content": text}]}) for text in ["hi", "thanks"]) + "\n",
        encoding="utf-8")
    config = tmp_path / "shadow.yaml"
    config.write_text("router:\n  candidates: [gpt-4o-mini, gpt-4.1]\n", encoding="utf-8")
    proc = run("eval", "--format", "log", "--data", str(log), "--shadow-config", str(config),
               "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_requests"] == 2 and out["logged"]["strong_share"] == 1.0
    assert out["change"]["estimated_cost_usd"] < 0
    code, text = run_in_process("shadow", "--data", str(log), "--shadow-config", str(config))
    assert code == 0 and "strong share" in text
