"""``pointsman routers``: every name eval, route, train and the gateway accept, listed once
with its kind and needs (the JSON form is what scripts read)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pointsman.cli import app
from pointsman.evaluation.routers import router_names
from pointsman.learned.cascade_config import JUDGES
from pointsman.registry import learners, scorers

KEYS = {"name", "kind", "accepted_by", "needs_answers", "needs_torch", "description"}


def listed(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["routers", "--json", *args])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_every_accepted_name_is_listed_once_with_its_kind_and_needs() -> None:
    rows = listed()
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    assert all(set(r) == KEYS and r["description"] for r in rows)
    for name in [*router_names(), *learners.names(), *scorers.names(), *JUDGES,
                 "cascade", "cascade-<threshold>"]:
        assert name in names, name
    by = {r["name"]: r for r in rows}
    assert by["cascade-learned"]["kind"] == "cascade" and by["cascade-learned"]["needs_answers"]
    assert by["knn"]["kind"] == "learned" and "train" in by["knn"]["accepted_by"]  # type: ignore[operator]
    assert by["heuristic"]["needs_answers"] is False
    assert by["finetune"]["needs_torch"] is True
    assert by["answer-judge"]["accepted_by"] == ["train"]
    assert by["agreement"]["kind"] == "judge"


def test_config_rules_are_listed_and_the_table_has_one_line_per_name(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"rules": [
        {"name": "code-to-big", "when": {"task_type": ["code"]}, "then": {"tier": "premium"}}]}))
    rule = {r["name"]: r for r in listed("--config", str(config))}["code-to-big"]
    assert rule["kind"] == "rule" and "tier premium" in str(rule["description"])
    table = CliRunner().invoke(app, ["routers"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    assert any(line.startswith("cascade-agreement ") and " needs " in line for line in lines)
