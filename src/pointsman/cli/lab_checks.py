"""Checks the lab CLI makes before it measures: is an artifact judged on its own training
data? Such a score is a training score, not a held-out one, and reads too well (an
artifact fitted on all of MMLU scores APGR 0.734 there, against 0.676 refitted per fold)."""

from __future__ import annotations

import sys
from pathlib import Path

from pointsman.evaluation.routers import is_artifact_path


def same_data(source: str | None, data: str | None) -> bool:
    """Whether an artifact's recorded ``data_source`` is the data being evaluated."""
    if not source or not data:
        return False
    try:
        return Path(source).expanduser().resolve() == Path(data).expanduser().resolve()
    except OSError:
        return source == data


def training_data_notes(routers: list[str], data: str | None) -> dict[str, str]:
    """A warning per artifact whose training data is ``data`` (printed on standard error)."""
    from pointsman.artifacts import read_artifact

    notes: dict[str, str] = {}
    for name in routers:
        if not is_artifact_path(name):
            continue
        source = read_artifact(name).metadata.get("data_source")
        if same_data(source, data):
            notes[name] = (f"{name} was trained on {source}, the data evaluated here: its "
                           "scores are training scores, not held-out (the folds do not "
                           "refit an artifact); evaluate the learner by name, or use "
                           "--train/--test, for held-out figures")
            print(f"pointsman: warning: {notes[name]}", file=sys.stderr)
    return notes
