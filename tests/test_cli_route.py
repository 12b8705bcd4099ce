"""``pointsman route`` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pointsman", "route", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)


def test_route_json_has_the_contract_keys() -> None:
    proc = run("What is the capital of France?", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"model", "fallbacks", "scores", "reason", "estimated_cost_usd"} <= set(data)
    assert 0 <= data["scores"]["complexity"] <= 100
    assert data["estimated_cost_usd"] < data["baseline_cost_usd"]


def test_route_human_output_explains_the_decision() -> None:
    proc = run("Prove that sqrt(2) is irrational, step by step.")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    for word in ("model", "reason", "complexity", "signals", "rule", "fallbacks", "cost"):
        assert word in out


def test_prompt_on_stdin_and_metadata() -> None:
    proc = run("--json", "--meta", "plan=premium", stdin=b"hello")
    data = json.loads(proc.stdout)
    assert data["rule"] == "premium-plan"


def test_bad_inputs_are_one_line_errors() -> None:
    cases = [run(""), run(stdin=b"\xff\xfe\x00"), run("hi", "--model", "gpt-99"),
             run("hi", "--meta", "novalue")]
    for proc in cases:
        assert proc.returncode == 2
        err = proc.stderr.decode().strip()
        assert err.startswith("pointsman: error:") and "\n" not in err
        assert "Traceback" not in err


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("router:\n  candidates: [gpt-4o]\n  wieghts: {cost: 1}\n")
    proc = run("hi", "--config", str(config))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert str(config) in err and "router.wieghts: unknown key" in err
    config.write_text("router: [1, 2\n")
    assert "not valid" in run("hi", "--config", str(config)).stderr.decode()
    assert "not found" in run("hi", "--config", str(tmp_path / "nope.yaml")).stderr.decode()


def test_a_one_megabyte_prompt_is_routed() -> None:
    big = ("Explain the following log and find the bug. " + "x = compute(y) " * 70_000)
    proc = run("--json", stdin=big.encode()[: 1 << 20])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["input_tokens"] > 200_000
