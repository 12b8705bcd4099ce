"""The evaluation lab: replay a router over outcome data under a protocol, measure it.

Protocols: ``k``-fold cross-validation with a fixed seed (a trainable router is fitted on
the training folds only and predicts the held-out fold; curves are computed on the
pooled held-out predictions), or an explicit train/test split. No router is ever scored
on prompts it was fitted on.

Two models (exactly two columns, or ``strong``/``weak`` named): RouteLLM metrics from the
router's score (:mod:`pointsman.evaluation.metrics`). Rows where either outcome is
unknown are dropped (noted). Many models: RouterBench metrics
(:mod:`pointsman.evaluation.pareto`), with the router's curve traced by

* a learner's predicted qualities: choose ``argmax(q_j - λ·c_j)`` per prompt, where
  ``c_j`` is model ``j``'s mean cost on the training data, sweeping λ from 0 (best
  predicted quality) to ∞ (cheapest model); ties go to the cheaper model;
* a scalar score in [0, 1] (a scorer such as the heuristic, or ``random``): the *score
  ladder*. The single models on the training data's Pareto front, cost-sorted, form a
  ladder of ``L`` rungs; a prompt with score ``s`` goes to rung
  ``min(L - 1, floor(clip(s + shift, 0, 1) · L))``, sweeping ``shift`` from -1 (all on
  the cheapest rung) to +1 (all on the best). A missing score goes to the cheapest rung.
* hard choices (``always-weak``/``always-strong``): one operating point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointsman.errors import DataError
from pointsman.evaluation import metrics as tm
from pointsman.evaluation import pareto as pm
from pointsman.evaluation import sweep as sw
from pointsman.evaluation.routers import LabRouter, Prediction, Roles
from pointsman.learning import FloatArray, OutcomeTable

Progress = Callable[[int], None]
REACH_LEVELS: tuple[float, ...] = (0.9, 0.95, 1.0)


@dataclass(frozen=True)
class Part:
    """One train/test pair of a protocol (for k folds: the other folds / one fold)."""

    train: OutcomeTable
    test: OutcomeTable


@dataclass(frozen=True)
class Plan:
    """A protocol made concrete: its parts and its name (printed in every output)."""

    parts: tuple[Part, ...]
    name: str

    @property
    def pooled(self) -> OutcomeTable:
        return concat([p.test for p in self.parts])


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices of each fold: a seeded permutation cut into ``folds`` parts."""
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if n < folds:
        raise DataError(f"cannot cut {n} prompts into {folds} folds")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, folds)]


def kfold_plan(table: OutcomeTable, folds: int, seed: int = 0,
               max_folds: int | None = None) -> Plan:
    """K-fold cross-validation; ``max_folds`` keeps only the first folds (quick runs of
    slow learners: every router still sees the same held-out prompts)."""
    parts = []
    held_out = fold_indices(len(table), folds, seed)
    name = f"{folds}-fold cross-validation (seed {seed})"
    if max_folds is not None and max_folds < folds:
        held_out = held_out[:max_folds]
        name = f"the first {max_folds} of {folds} folds (seed {seed})"
    for held in held_out:
        train = np.setdiff1d(np.arange(len(table)), held, assume_unique=True)
        parts.append(Part(table.subset(train), table.subset(held)))
    return Plan(tuple(parts), name)


def split_plan(train: OutcomeTable, test: OutcomeTable) -> Plan:
    if train.models != test.models:
        raise DataError(f"train models {list(train.models)} differ from test models "
                        f"{list(test.models)}")
    overlap = len(set(train.prompts) & set(test.prompts))
    name = f"train/test split ({len(train)} train, {len(test)} test prompts)"
    if overlap:
        name += f"; {overlap} test prompts also appear in the training data"
    return Plan((Part(train, test),), name)


def concat(tables: Sequence[OutcomeTable]) -> OutcomeTable:
    first = tables[0]
    cost = None if first.cost is None else np.vstack([t.cost for t in tables
                                                      if t.cost is not None])
    groups = tuple(g for t in tables for g in t.groups) if first.groups else ()
    answers = None if first.answers is None else np.vstack([t.answers for t in tables
                                                             if t.answers is not None])
    return OutcomeTable(tuple(p for t in tables for p in t.prompts), first.models,
                        np.vstack([t.quality for t in tables]), cost, groups,
                        first.source, first.notes, answers)


def two_model_table(table: OutcomeTable, weak: str | None = None,
                    strong: str | None = None) -> OutcomeTable:
    """The table as (weak, strong) columns, rows with an unknown outcome dropped.

    Without names, the table must have two models; the better on average is strong.
    """
    if weak is None or strong is None:
        if len(table.models) != 2:
            raise DataError(f"two-model evaluation needs exactly two models or --weak and "
                            f"--strong; the data has {len(table.models)}")
        means = pm.column_means(table.quality)
        s = int(np.argmax(np.nan_to_num(means, nan=-np.inf)))
        strong, weak = table.models[s], table.models[1 - s]
    unknown = [m for m in (weak, strong) if m not in table.models]
    if unknown:
        raise DataError(f"models {unknown} are not in the data; models: {list(table.models)}")
    cols = [table.column(weak), table.column(strong)]
    keep = np.flatnonzero(~np.isnan(table.quality[:, cols]).any(axis=1))
    if keep.size == 0:
        raise DataError(f"no prompt has a known outcome for both {weak} and {strong}")
    sub = table.subset(keep)
    dropped = len(table) - keep.size
    notes = sub.notes + ((f"dropped {dropped} prompts with an unknown outcome for "
                          f"{weak} or {strong}",) if dropped else ())
    return OutcomeTable(sub.prompts, (weak, strong), sub.quality[:, cols],
                        None if sub.cost is None else sub.cost[:, cols], sub.groups,
                        sub.source, notes,
                        None if sub.answers is None else sub.answers[:, cols])


def predictions(router: LabRouter, plan: Plan, roles: Roles | None,
                progress: Progress | None = None) -> list[Prediction]:
    """Fit (training part only) and predict (test part) for every part of the plan."""
    out = []
    for part in plan.parts:
        if router.trainable:
            router.fit(part.train)
        out.append(router.predict(part.test, roles))
        if progress is not None:
            progress(1)
    return out


# -- two models ------------------------------------------------------------------------
def pooled_scores(preds: Sequence[Prediction]) -> FloatArray | None:
    """Concatenated scores, or ``None`` when the router made hard choices."""
    if all(p.choice is not None for p in preds):
        return None
    if any(p.score is None for p in preds):
        raise DataError("a two-model router must give a score or a hard choice")
    return np.concatenate([p.score for p in preds if p.score is not None])


def evaluate_two(name: str, plan: Plan, preds: Sequence[Prediction]) -> dict[str, Any]:
    test = plan.pooled
    weak_q, strong_q = test.quality[:, 0], test.quality[:, 1]
    scores = pooled_scores(preds)
    result = _two_header(name, plan, test)
    if scores is None:
        choice = np.concatenate([p.choice for p in preds if p.choice is not None])
        share, quality = tm.fixed_point(choice.astype(np.float64), weak_q, strong_q)
        pgr = float(tm.pgr(quality, result["weak"]["quality"], result["strong"]["quality"]))
        result.update(curve=[{"strong_share": share, "quality": quality}], apgr=None,
                      cpt20=None, cpt50=None, cpt80=None, auc=None, pgr=pgr,
                      fixed=True)
        return result
    found = tm.two_model_metrics(scores, weak_q, strong_q)
    result.update(curve=found.curve.sampled(), apgr=found.apgr,
                  **{f"cpt{round(k * 100)}": v for k, v in found.cpt.items()},
                  auc=tm.roc_auc(scores, weak_q, strong_q), fixed=False,
                  missing_scores=int(np.isnan(scores).sum()),
                  distinct_scores=len(np.unique(tm.sort_key(scores))))
    return result


def _two_header(name: str, plan: Plan, test: OutcomeTable) -> dict[str, Any]:
    weak_q, strong_q = test.quality[:, 0], test.quality[:, 1]
    weak, strong = float(np.mean(weak_q)), float(np.mean(strong_q))
    o_scores = tm.oracle_scores(weak_q, strong_q)
    oracle = tm.two_model_metrics(o_scores, weak_q, strong_q)
    o_share, o_quality = tm.oracle_point(weak_q, strong_q)
    return {
        "kind": "two-model", "protocol": plan.name, "data": test.source,
        "n_test": len(test), "router": name, "models": list(test.models),
        "weak": {"model": test.models[0], "quality": weak},
        "strong": {"model": test.models[1], "quality": strong},
        "random": {"apgr": 0.5, "cpt20": 0.2, "cpt50": 0.5, "cpt80": 0.8,
                   "curve": [{"strong_share": 0.0, "quality": weak},
                             {"strong_share": 1.0, "quality": strong}]},
        "oracle": {"quality": o_quality, "strong_share": o_share, "apgr": oracle.apgr,
                   **{f"cpt{round(k * 100)}": v for k, v in oracle.cpt.items()}},
        "notes": list(test.notes),
    }


# -- many models -----------------------------------------------------------------------
def sweep_points(plan: Plan, preds: Sequence[Prediction]
                 ) -> tuple[list[dict[str, float]], str]:
    """The router's operating points on the pooled test data, and the policy's name."""
    test = plan.pooled
    assert test.cost is not None
    choices: list[tuple[float, np.ndarray]]
    if all(p.replay is not None for p in preds):
        return _dedupe(replay_points(test, preds)), (
            "cascade replay: per task, the policy of best training quality - λ·cost "
            "(every call paid), λ swept 0 → ∞")
    if all(p.choice is not None for p in preds):
        choices = [(0.0, np.concatenate([p.choice for p in preds if p.choice is not None]))]
        policy = "one fixed model"
    elif all(p.quality is not None and p.cost is not None for p in preds):
        grid = sw.lambda_grid(pm.column_means(test.cost))
        choices = [(lam, np.concatenate([sw.lambda_choice(p.quality, p.cost, lam)
                                         for p in preds if p.quality is not None
                                         and p.cost is not None])) for lam in grid]
        policy = "argmax predicted quality - λ·mean training cost, λ swept 0 → ∞"
    elif all(p.score is not None for p in preds):
        rungs = [sw.ladder(part.train) for part in plan.parts]
        choices = [(shift, np.concatenate([sw.ladder_choice(p.score, r, shift)
                                           for p, r in zip(preds, rungs, strict=True)
                                           if p.score is not None]))
                   for shift in sw.LADDER_SHIFTS]
        policy = "score ladder over the cost-sorted Pareto-front models, shift swept -1 → 1"
    else:
        raise DataError("the router gave neither choices, scores nor predicted qualities")
    points = []
    for param, choice in choices:
        cost, quality = pm.choice_point(choice, test.quality, test.cost)
        points.append({"cost": cost, "quality": quality,
                       "param": float(param) if np.isfinite(param) else "inf"})
    return _dedupe(points), policy


def replay_points(test: OutcomeTable, preds: Sequence[Prediction]) -> list[dict[str, Any]]:
    """A cascade's pooled points: every model called is paid; calls per request counted."""
    assert test.cost is not None
    q, c = pm.filled(test.quality), pm.filled(test.cost)
    rows = np.arange(len(test))
    served = np.concatenate([p.replay.served for p in preds], axis=1)
    called = np.concatenate([p.replay.called for p in preds], axis=1)
    points = []
    for k, param in enumerate(preds[0].replay.params):
        calls = called[k].sum(axis=1)
        points.append({"cost": float((c * called[k]).sum(axis=1).mean()),
                       "quality": float(q[rows, served[k]].mean()),
                       "param": float(param) if np.isfinite(param) else "inf",
                       "calls_mean": float(calls.mean()), "calls_max": int(calls.max()),
                       "policy": preds[0].replay.policies[k]})
    return points


def _calls_at(points: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The cheapest replayed point reaching ``target`` quality (a real point, no mixing)."""
    reached = [p for p in points if "calls_mean" in p and p["quality"] >= target - 1e-12]
    if not reached:
        return None
    best = min(reached, key=lambda p: p["cost"])
    return {key: best[key] for key in ("cost", "quality", "calls_mean", "calls_max",
                                       "policy")}


def _dedupe(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[float, float], dict[str, Any]] = {}
    for point in points:
        seen.setdefault((round(point["cost"], 12), round(point["quality"], 12)), point)
    return sorted(seen.values(), key=lambda p: (p["cost"], p["quality"]))


def evaluate_many(name: str, plan: Plan, preds: Sequence[Prediction],
                  budgets: Sequence[float] = ()) -> dict[str, Any]:
    test = plan.pooled
    if test.cost is None:
        raise DataError("many-model evaluation needs per-call costs (RouterBench data or "
                        "a request log); for two models of RouteLLM data use the "
                        "two-model metrics (--weak/--strong)")
    points, policy = sweep_points(plan, preds)
    hull = pm.pareto_hull(np.array([p["cost"] for p in points]),
                          np.array([p["quality"] for p in points]))
    s_cost, s_quality = pm.singles(test.quality, test.cost)
    c_min, c_max = float(np.nanmin(s_cost)), float(np.nanmax(s_cost))
    best = int(np.nanargmax(s_quality))
    o_cost, o_quality = pm.choice_point(pm.oracle_choice(test.quality, test.cost),
                                        test.quality, test.cost)
    singles_hull = pm.pareto_hull(s_cost, s_quality)
    asked = list(budgets) or [float(c) for c in np.sort(s_cost[np.isfinite(s_cost)])]
    return {
        "kind": "many-model", "protocol": plan.name, "data": test.source,
        "n_test": len(test), "router": name, "models": list(test.models), "policy": policy,
        "curve": points, "pareto": hull.points(), "aiq": pm.aiq(hull, c_min, c_max),
        "cost_range": [c_min, c_max],
        "singles": {m: {"cost": float(c), "quality": float(q)}
                    for m, c, q in zip(test.models, s_cost, s_quality, strict=True)},
        "singles_pareto": singles_hull.points(),
        "singles_aiq": pm.aiq(singles_hull, c_min, c_max),
        "best_single": {"model": test.models[best], "quality": float(s_quality[best]),
                        "cost": float(s_cost[best])},
        "oracle": {"cost": o_cost, "quality": o_quality},
        "cost_to_reach": {f"{round(lv * 100)}%": pm.cost_to_reach(hull, lv * s_quality[best])
                          for lv in REACH_LEVELS},
        "quality_within_budget": [{"budget": b, "quality": pm.quality_within_budget(hull, b)}
                                  for b in asked],
        "cascade_at_95%": _calls_at(points, 0.95 * s_quality[best]),
        "notes": list(test.notes),
    }


# -- entry point -----------------------------------------------------------------------
def evaluate(router: LabRouter, plan: Plan, *, two_model: bool,
             budgets: Sequence[float] = (), progress: Progress | None = None
             ) -> dict[str, Any]:
    """Run ``router`` under ``plan`` and measure it (tables already shaped by the caller:
    for two models, columns (weak, strong) as :func:`two_model_table` returns)."""
    roles = Roles(weak=0, strong=1) if two_model else None
    preds = predictions(router, plan, roles, progress)
    if two_model:
        return evaluate_two(router.name, plan, preds)
    return evaluate_many(router.name, plan, preds, budgets)
