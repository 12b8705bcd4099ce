"""What a newcomer meets: --version, one-line errors with "did you mean", config paths
relative to the file, keys without a config, tidy JSON, calibrate --write-config that
loads, and the warning for an artifact judged on its own training data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pointsman import __version__
from pointsman.artifacts import save_learner
from pointsman.cli.keys import check_models
from pointsman.cli.lab_checks import training_data_notes
from pointsman.config import load_config
from pointsman.errors import ConfigError
from pointsman.evaluation.calibrate import write_threshold
from pointsman.jsonio import tidy_floats
from pointsman.learning import OutcomeTable
from pointsman.registry import learners
from pointsman.router import Router


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pointsman", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd)


def test_version_and_one_line_errors(tmp_path: Path) -> None:
    assert cli("--version").stdout.strip() == f"pointsman {__version__}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("catalog:\n  models:\n    gpt-4o-mini: {input_price: -1}\n")
    proc = cli("route", "--config", str(bad), "hi")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "gpt-4o-mini" in proc.stderr and "input_price" in proc.stderr
    assert "errors.pydantic.dev" not in proc.stderr


def test_unknown_keys_suggest_the_near_one(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("router:\n  wieghts: {quality: 1}\n"
                    "rules:\n  - {name: a, when: {min_tols: 2}, then: {tier: cheap}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "router.wieghts: unknown key (did you mean 'weights'?)" in info.value.message
    assert "rules.0.when.min_tols: unknown key (did you mean 'min_tools'?)" in \
        info.value.message


def test_threshold_without_models_names_the_fix_not_the_section(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("router: {mode: threshold}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.endswith("router: mode 'threshold' needs strong_model and "
                                       "weak_model")


def test_unknown_router_is_listed_once_with_a_hint() -> None:
    from pointsman.config import load_config as default
    from pointsman.evaluation.routers import lab_router

    with pytest.raises(ConfigError) as info:
        lab_router("logrge", {}, default())
    message = info.value.message
    assert "did you mean 'logreg'?" in message
    known = message.split("known: ")[1].split(" (")[0].split(", ")
    assert len(known) == len(set(known)) and "knn" in known


def test_paths_in_a_config_are_relative_to_its_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        "gateway: {keys_db: keys.db, request_log: {sqlite_path: /abs/requests.db}}\n"
        "budgets: {sqlite_path: spend.db}\n")
    cfg = load_config(folder / "p.yaml")
    assert cfg.gateway.keys_db == str(folder / "keys.db")
    assert cfg.budgets.sqlite_path == str(folder / "spend.db")
    assert cfg.gateway.request_log.sqlite_path == "/abs/requests.db"


def test_no_builtin_endpoint_on_the_gateways_port() -> None:
    cfg = load_config()
    port = f":{cfg.gateway.port}/"
    assert all(port not in (e.base_url or "") for e in cfg.providers.endpoints.values())


def test_keys_take_a_db_and_refuse_unknown_models(tmp_path: Path) -> None:
    proc = cli("keys", "add", "bob", "--db", str(tmp_path / "k.db"), "--user", "bob",
               "--model", "auto")
    assert proc.returncode == 0 and proc.stdout.startswith("sk-"), proc.stderr
    cfg = load_config()
    check_models(["auto", "gpt-4o-mini", "router-*", "claude-opus-4-1", "cascade-0.9"], cfg)
    with pytest.raises(ConfigError, match="did you mean 'gpt-4o-mini'"):
        check_models(["gpt-4o-mni"], cfg)
    with pytest.raises(ConfigError):
        check_models(["gpt-99"], cfg)


def test_json_floats_are_tidy() -> None:
    assert tidy_floats({"a": [0.00032139999999999995, 1], "b": 0.1 + 0.2}) == \
        {"a": [0.0003214, 1], "b": 0.3}


def test_write_config_gives_a_file_that_loads(tmp_path: Path) -> None:
    from pointsman.cli.calibrate import gateway_pair

    target = tmp_path / "pointsman.yaml"
    strong, weak = gateway_pair(target, None, None, None)
    write_threshold(target, 0.37, "heuristic", None, strong, weak)
    cfg = load_config(target)
    assert (cfg.router.mode, cfg.router.strong_model, cfg.router.weak_model) == \
        ("threshold", strong, weak)
    assert strong != weak
    assert Router(cfg).decide is not None  # the pair resolves against the catalog


def test_an_artifact_on_its_own_training_data_is_flagged(tmp_path: Path) -> None:
    data = tmp_path / "outcomes.csv"
    data.write_text("prompt\n")
    table = OutcomeTable(prompts=tuple(f"question {i}" for i in range(20)),
                         models=("weak", "strong"),
                         quality=np.array([[i % 2, 1.0] for i in range(20)], dtype=float))
    learner = learners.get("knn")({"encoder": "hashing:64"})
    learner.fit(table)
    artifact = save_learner(learner, tmp_path / "a.npz", {"data_source": str(data)})
    notes = training_data_notes([str(artifact), "heuristic"], str(data))
    assert list(notes) == [str(artifact)] and "training scores" in notes[str(artifact)]
    assert training_data_notes([str(artifact)], str(tmp_path / "other.csv")) == {}
    other = json.dumps(notes)
    assert "held-out" in other


def test_an_endpoint_on_the_gateways_own_address_is_found(tmp_path: Path) -> None:
    from pointsman.cli.self_loop import endpoints_on_self

    path = tmp_path / "loop.yaml"
    path.write_text("providers:\n  endpoints:\n"
                    "    vllm: {kind: openai, base_url: 'http://localhost:8000/v1'}\n")
    cfg = load_config(path)
    assert endpoints_on_self(cfg, "127.0.0.1", 8000) == ["vllm"]
    assert endpoints_on_self(cfg, "127.0.0.1", 8001) == []
    assert endpoints_on_self(load_config(), "127.0.0.1", 8000) == []
