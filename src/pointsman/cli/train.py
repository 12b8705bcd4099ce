"""``pointsman train``: fit a learned router on outcome data and write its artifact."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from pointsman.artifacts import save_learner
from pointsman.errors import InputError
from pointsman.learned.calibration import lambda_curve, out_of_fold
from pointsman.learning import FloatArray, Learner, OutcomeTable, strong_win_score
from pointsman.registry import learners

FORMATS = ("routellm", "routerbench", "log")


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; values that parse as JSON (numbers, objects, booleans) are typed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--router-option expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _metadata(table: OutcomeTable, data: str, fmt: str, learner: Learner,
              seconds: float) -> dict[str, Any]:
    from pointsman.learned.base import column_means

    quality = column_means(table.quality, float('nan'))
    return {
        "data_source": str(data), "data_format": fmt, "rows": len(table),
        "models": list(table.models),
        "protocol": f"fit on all {len(table)} rows of the data (no hold-out); measure "
                    "held-out quality with `pointsman eval`",
        "metrics": {"train_mean_quality": {m: round(float(q), 6) for m, q in
                                           zip(table.models, quality, strict=True)},
                    "fit_seconds": round(seconds, 3)},
        "encoder": getattr(learner, "encoder", None),
        "text": _focus(learner),
        "table_notes": list(table.notes),
    }


def _focus(learner: Learner) -> str:
    """What of each prompt the learner embeds (shared prefixes stripped or not)."""
    from pointsman.learned.focus import TextFocus

    focus = getattr(learner, "text_focus", None)
    return focus.describe() if isinstance(focus, TextFocus) else "the whole prompt"


def train(
    data: Annotated[str, typer.Option(
        "--data", help="Outcome data (file, folder or glob; a request log database).")],
    fmt: Annotated[str, typer.Option("--format", help="routellm | routerbench | log.")],
    router: Annotated[str, typer.Option("--router", help="Learner name (knn, logreg, mf, "
                                        "ensemble, finetune, answer-judge: `pointsman "
                                        "routers`).")],
    out: Annotated[Path, typer.Option("--out", help="Artifact file to write (.npz).")],
    router_option: Annotated[list[str] | None, typer.Option(
        "--router-option", help="Learner option key=value (repeatable).")] = None,
    sample: Annotated[int | None, typer.Option(
        "--sample", min=10, help="Train on a seeded random sample of this many prompts.")]
    = None,
    calibrate_folds: Annotated[int, typer.Option(
        "--calibrate-folds", min=0, help="K-fold held-out metrics, and the λ calibration "
        "for cost targets when the data has costs (0: off).")] = 0,
) -> None:
    """Fit a learned router on outcome data and write a versioned artifact."""
    from pointsman.evaluation.loaders import load_table
    from pointsman.evaluation.runner import sampled

    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    options = parse_options(router_option or [])
    make = learners.get(router)
    learner = make(options)
    table = sampled(load_table(data, fmt), sample)
    started = time.perf_counter()
    # a line, not a bar: the long parts inside (the static table, embedding) show their own
    typer.echo(f"pointsman: fitting {router} on {len(table)} prompts", err=True)
    learner.fit(table)
    seconds = time.perf_counter() - started
    metadata = _metadata(table, data, fmt, learner, seconds)
    if calibrate_folds:
        predicted = out_of_fold(lambda: make(options), table, calibrate_folds)
        metadata["protocol"] = (f"fit on all {len(table)} rows; held-out metrics and λ curve "
                                f"from {calibrate_folds}-fold out-of-fold predictions (seed 0)")
        metadata["metrics"] |= held_out(predicted, table)
        if table.cost is not None:
            metadata["lambda_curve"] = lambda_curve(predicted, table)
    path = save_learner(learner, out, metadata)
    typer.echo(f"wrote {path}: {router} on {len(table)} prompts × {len(table.models)} models "
               f"({seconds:.1f} s)")
    for key, value in metadata["metrics"].items():
        if key.startswith("held_out"):
            typer.echo(f"  {key}: {value}")


def held_out(predicted: FloatArray, table: OutcomeTable) -> dict[str, Any]:
    """Two-model APGR and CPT(50%) of the out-of-fold predictions (best vs worst model)."""
    from pointsman.evaluation.metrics import two_model_metrics
    from pointsman.learned.base import column_means

    if len(table.models) != 2:
        return {}
    means = column_means(table.quality, 0.5)
    strong, weak = int(np.argmax(means)), int(np.argmin(means))
    known = ~np.isnan(table.quality).any(axis=1)
    scores = strong_win_score(predicted, strong, weak)[known]
    metrics = two_model_metrics(scores, table.quality[known, weak], table.quality[known, strong])
    cpt50 = metrics.cpt.get(0.5)
    return {"held_out_apgr": round(metrics.apgr, 4),
            "held_out_cpt50": None if cpt50 is None else round(cpt50, 4)}


def register(app: typer.Typer) -> None:
    app.command("train")(train)
