"""From command-line choices to a plan and results: the one path ``eval`` and ``calibrate``
share, so both see the same tables, protocol and routers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointsman.config import PointsmanConfig
from pointsman.errors import DataError, InputError
from pointsman.evaluation.lab import (
    Plan,
    Progress,
    evaluate,
    kfold_plan,
    split_plan,
    two_model_table,
)
from pointsman.evaluation.loaders import load_table
from pointsman.evaluation.routers import lab_router
from pointsman.learning import OutcomeTable


@dataclass(frozen=True)
class DataSpec:
    """Where the outcomes come from and under which protocol they are replayed."""

    format: str
    data: str | None = None
    train: str | None = None
    test: str | None = None
    folds: int = 5
    seed: int = 0
    weak: str | None = None
    strong: str | None = None
    max_folds: int | None = None
    sample: int | None = None


def sampled(table: OutcomeTable, sample: int | None, seed: int = 0) -> OutcomeTable:
    """A seeded random ``sample`` of the rows (all of them when ``None`` or larger): quick
    runs of the same commands, e.g. the README's in the test suite."""
    if sample is None or sample >= len(table):
        return table
    rows = np.random.default_rng(seed).choice(len(table), size=sample, replace=False)
    return table.subset(np.sort(rows))


def _shape(table: OutcomeTable, spec: DataSpec) -> tuple[OutcomeTable, bool]:
    if (spec.weak is None) != (spec.strong is None):
        raise InputError("give both --weak and --strong, or neither")
    if spec.weak is not None or len(table.models) == 2:
        return two_model_table(table, spec.weak, spec.strong), True
    return table, False


def prepare(spec: DataSpec) -> tuple[Plan, bool]:
    """The protocol's plan over the loaded data, and whether it is a two-model case."""
    if spec.train or spec.test:
        if not (spec.train and spec.test) or spec.data:
            raise InputError("give --data (cross-validation) or both --train and --test")
        train, two = _shape(sampled(load_table(spec.train, spec.format), spec.sample), spec)
        test = sampled(load_table(spec.test, spec.format), spec.sample)
        if two:  # the test table's weak/strong roles follow the training table's
            test = two_model_table(test, *train.models)
        return split_plan(train, test), two
    if not spec.data:
        raise InputError("give --data PATH (or --train PATH --test PATH)")
    table, two = _shape(sampled(load_table(spec.data, spec.format), spec.sample), spec)
    return kfold_plan(table, spec.folds, spec.seed, spec.max_folds), two


def parse_options(pairs: Sequence[str], routers: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``k=v`` (every router) or ``router:k=v`` (one router); JSON values are typed."""
    out: dict[str, dict[str, Any]] = {r: {} for r in routers}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--router-option expects key=value, got {pair!r}")
        target, _, name = key.rpartition(":")
        if target and target not in out:
            raise InputError(f"--router-option {pair!r} names router {target!r}, which is "
                             f"not among --router {','.join(routers)}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        for router in [target] if target else routers:
            out[router][name.strip()] = parsed
    return out


def split_names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InputError("--router is empty")
    if len(set(names)) != len(names):
        raise InputError(f"--router lists a router twice: {value}")
    return names


def run(spec: DataSpec, routers: Sequence[str], options: Mapping[str, Mapping[str, Any]],
        config: PointsmanConfig, budgets: Sequence[float] = (),
        progress: Progress | None = None, plan: tuple[Plan, bool] | None = None
        ) -> list[dict[str, Any]]:
    """Evaluate every router on the same plan."""
    the_plan, two = plan or prepare(spec)
    built = [lab_router(name, options.get(name, {}), config) for name in routers]
    results = [evaluate(r, the_plan, two_model=two, budgets=budgets, progress=progress)
               for r in built]
    if not results:
        raise DataError("no router to evaluate")
    return results


def finite(value: Any) -> Any:
    """``value`` with every nan/inf float replaced by ``None`` (strict JSON)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
