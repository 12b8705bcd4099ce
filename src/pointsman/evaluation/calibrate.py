"""Calibration: the threshold that gives a target share of strong calls (or a cost cap).

RouteLLM's recipe: the threshold is the ``1 - share`` quantile of the router's scores on
representative prompts; the gateway then sends a request to the strong model when its
score ``≥ threshold`` (``router.mode: threshold``, score = ``complexity / 100``; the
virtual model ``router-<name>-<threshold>`` carries the same number). Trainable routers
are scored out of fold (k-fold, as ``pointsman eval``), so the scores are the ones the
router gives to prompts it has not seen. The share reached is reported exactly: tied
scores cannot be split by a threshold.

With a cost cap (``max_cost_per_request``, two models with per-call costs), the threshold
is the lowest one whose average cost per request stays within the cap.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pointsman.config import load_config
from pointsman.errors import ConfigError, DataError, InputError
from pointsman.evaluation import metrics as tm
from pointsman.evaluation.lab import Plan, pooled_scores, predictions
from pointsman.evaluation.pareto import filled
from pointsman.evaluation.routers import LabRouter, Roles


def calibrate(router: LabRouter, plan: Plan, *, strong_share: float | None = None,
              max_cost: float | None = None) -> dict[str, Any]:
    """The threshold for ``strong_share`` or ``max_cost`` on the plan's pooled test data."""
    if (strong_share is None) == (max_cost is None):
        raise InputError("give exactly one of --strong-share and --max-cost-per-request")
    scores = pooled_scores(predictions(router, plan, Roles(weak=0, strong=1)))
    if scores is None:
        raise DataError(f"router {router.name} makes fixed choices; it has no threshold")
    test = plan.pooled
    weak_q, strong_q = test.quality[:, 0], test.quality[:, 1]
    if strong_share is not None:
        threshold, _ = tm.threshold_for_share(scores, strong_share)
    else:
        assert max_cost is not None
        threshold, _ = _for_cost(scores, test.cost, max_cost)
    threshold = round(min(threshold, 1.0), 6)  # what the config holds; share exact for it
    strong_calls = tm.sort_key(scores) >= threshold
    quality = float(np.mean(np.where(strong_calls, strong_q, weak_q)))
    weak, strong = float(np.mean(weak_q)), float(np.mean(strong_q))
    out: dict[str, Any] = {
        "router": router.name, "protocol": plan.name, "n": len(test),
        "models": list(test.models), "threshold": threshold,
        "strong_share": float(np.mean(strong_calls)), "quality": quality,
        "pgr": float(tm.pgr(quality, weak, strong)) if strong != weak else None,
        "requested": {"strong_share": strong_share, "max_cost_per_request": max_cost},
    }
    if test.cost is not None:
        cost = filled(test.cost)
        out["cost_per_request"] = float(np.mean(np.where(strong_calls, cost[:, 1],
                                                         cost[:, 0])))
    return out


def _for_cost(scores: Any, cost: Any, max_cost: float) -> tuple[float, float]:
    if cost is None:
        raise DataError("--max-cost-per-request needs data with per-call costs "
                        "(RouterBench or a request log)")
    c = filled(cost)
    curve = tm.share_curve(scores, c[:, 0], c[:, 1])
    within = np.flatnonzero(curve.quality <= max_cost + 1e-15)
    if within.size == 0:
        raise DataError(f"even the weak model alone costs ${curve.quality[0]:.6f} per request "
                        f"on average, above the cap ${max_cost}")
    k = int(within[-1])
    threshold = float(curve.threshold[k])
    if not np.isfinite(threshold):  # share 0: above every score
        threshold = float(np.nextafter(np.nanmax(tm.sort_key(scores)), np.inf))
    return threshold, float(curve.share[k])


def write_threshold(file: str | Path, threshold: float, scorer: str,
                    scorer_options: dict[str, Any] | None = None,
                    strong_model: str | None = None, weak_model: str | None = None) -> Path:
    """Merge ``router.{threshold, scorer, mode: threshold}`` into a YAML config file.

    The rest of the file is kept. The result is validated as a whole before it replaces
    the file, so a config that would not load is never written.
    """
    path = Path(file).expanduser()
    data = _read_yaml(_yaml_path(path))
    router = data.setdefault("router", {})
    if not isinstance(router, dict):
        raise ConfigError(f"{path}: router: expected a mapping")
    router.update(threshold=round(float(threshold), 6), scorer=scorer, mode="threshold")
    if scorer_options is not None:
        router["scorer_options"] = scorer_options
    if strong_model:
        router["strong_model"] = strong_model
    if weak_model:
        router["weak_model"] = weak_model
    return _write_validated(path, data)


def write_cascade(file: str | Path, settings: dict[str, Any], policy: dict[str, Any]) -> Path:
    """Merge ``settings`` into the ``cascade`` section of a YAML config file and put
    ``policy`` among ``cascade.policies`` (replacing the entry of the same name, else
    last: the policies written by hand before it still match first). Validated as
    :func:`write_threshold`."""
    path = Path(file).expanduser()
    data = _read_yaml(_yaml_path(path))
    cascade = data.setdefault("cascade", {})
    if not isinstance(cascade, dict):
        raise ConfigError(f"{path}: cascade: expected a mapping")
    cascade.update(settings)  # a judge's section is replaced whole: no stale partner
    policies = cascade.get("policies") or []
    if not isinstance(policies, list):
        raise ConfigError(f"{path}: cascade.policies: expected a list")
    names = [p.get("name") if isinstance(p, dict) else None for p in policies]
    if policy["name"] in names:
        policies[names.index(policy["name"])] = policy
    else:
        policies.append(policy)
    cascade["policies"] = policies
    return _write_validated(path, data)


def _yaml_path(path: Path) -> Path:
    if path.suffix.lower() == ".toml":
        raise ConfigError(f"{path}: --write-config writes YAML; give a .yaml file")
    return path


def _write_validated(path: Path, data: dict[str, Any]) -> Path:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=path.parent, delete=False,
                                     encoding="utf-8") as tmp:
        tmp.write(text)
    try:
        load_config(tmp.name)
    except ConfigError as exc:
        Path(tmp.name).unlink()
        raise ConfigError(f"{path}: not written, the result would not load: "
                          f"{exc.message.replace(tmp.name, str(path))}") from None
    Path(tmp.name).replace(path)
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data
