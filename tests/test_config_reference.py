"""docs/config-reference.md is generated from the config models and kept up to date."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "config_reference.py"
# Keys with neither a Field description nor a described section: may only go down.
MAX_UNDOCUMENTED = 253


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, cwd=ROOT, check=False)


def test_committed_reference_is_up_to_date() -> None:
    result = _run("--check")
    assert result.returncode == 0, result.stderr


def test_reference_lists_every_key_and_description_gap_only_shrinks() -> None:
    from pointsman.config import PointsmanConfig

    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    keys = [key for key, *_ in ref.walk(PointsmanConfig)]
    text = (ROOT / "docs" / "config-reference.md").read_text("utf-8")
    assert all(f"`{key}`" in text for key in keys)
    assert {"router.candidates", "gateway.keys_db", "budgets.sqlite_path"} <= set(keys)
    assert len(ref.undocumented()) <= MAX_UNDOCUMENTED
