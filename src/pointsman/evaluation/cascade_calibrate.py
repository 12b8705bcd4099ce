"""Cascade calibration: the cascade policy (chain, judge, threshold) that meets a cost cap
or a quality floor on outcome data with answers, chosen as the gateway can run it.

The candidates are the cascade replay's (:mod:`pointsman.evaluation.cascade_replay`) that
the gateway's ``cascade`` section expresses with one judge: a single model; ``first →
escalate`` with the learned judge alone (``alone ≥ t``); ``first → escalate`` with a
second cheap model as the partner of the agreement judge (accept when they agree) or of
the learned judge (``paired ≥ t``). One policy serves every request (the data's task
names are not the gateway's task types).

Choice, on training rows only (judge scores cross-fitted on inner folds, as the replay):
under a cost cap, the candidate of best training quality whose training cost per request
stays within the cap; under a quality floor (a fraction of the best single model's
training quality), the cheapest candidate reaching it. The figures reported are
cross-validated: each outer fold's policy is chosen on the other folds and replayed on it
(every call paid); the pooled held-out cost, quality and calls per request say what the
rule gives on prompts it has not seen. The policy to deploy is then chosen on all rows.

Data without per-call costs (RouteLLM) has two models: the cost of a request is then
whether it reached the strong model (the strong-call share).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pointsman.errors import DataError, InputError
from pointsman.evaluation.cascade_replay import (
    AGREE,
    NEVER,
    CascadeRouter,
    Policy,
    _candidate_table,
    execute,
)
from pointsman.evaluation.lab import Plan
from pointsman.evaluation.pareto import column_means, filled
from pointsman.learning import OutcomeTable

UNWRITABLE = "no cascade policy on this data can be written for the gateway"
Allowed = Callable[[Policy, tuple[str, ...]], bool] | None


@dataclass(frozen=True)
class Target:
    """What the cascade must meet: a cost cap (per request) or a quality floor (a fraction
    of the best single model's quality); exactly one is given."""

    max_cost: float | None = None
    min_quality: float | None = None

    def __post_init__(self) -> None:
        if (self.max_cost is None) == (self.min_quality is None):
            raise InputError("give exactly one of --max-cost-per-request and --min-quality")


@dataclass(frozen=True)
class Choice:
    """A policy chosen on a table, its figures there, and whether it met the target."""

    policy: Policy
    quality: float
    cost: float
    reached: bool


def expressible(policy: Policy) -> bool:
    """Whether the gateway's cascade runs this policy with one judge."""
    if policy.escalate is None:
        return True
    if policy.second is None:
        return policy.alone < NEVER
    return policy.alone == NEVER and policy.paired != NEVER


def with_costs(table: OutcomeTable) -> tuple[OutcomeTable, str]:
    """The table with per-call costs, and the unit they are in: dollars, or for costless
    two-model data 1 for a strong call (the cost per request is the strong-call share)."""
    if table.cost is not None:
        return table, "usd"
    if len(table.models) != 2:
        raise DataError("cascade calibration needs per-call costs (RouterBench data) or "
                        "two models (RouteLLM data: the cost is the strong-call share)")
    cost = np.tile([0.0, 1.0], (len(table), 1))
    return replace(table, cost=cost), "strong_share"


def choose(router: CascadeRouter, train: OutcomeTable, target: Target,
           allowed: Allowed = None) -> tuple[Choice, list[int]]:
    """The policy for ``target`` on ``train`` (and the cheap models its signals need);
    ``allowed``: which policies may be chosen (those the gateway can be given)."""
    cheap, ladder = router._models(train)
    candidates = [p for p in router._candidates(cheap, ladder) if expressible(p)
                  and (allowed is None or allowed(p, train.models))]
    if not candidates:
        raise DataError(f"{UNWRITABLE}: map the data's models to catalog models with "
                        "--gateway-model DATA=CATALOG (a cheap first model, a stronger "
                        "escalation, a partner no weaker than the first)")
    sig = router._signals(train, train, cheap, inner=True)
    table = _candidate_table(candidates, sig, train, np.zeros(len(train), np.int64), 1)
    q, c = table.pooled_quality, table.pooled_cost
    if target.max_cost is not None:
        ok = c <= target.max_cost + 1e-15
        k = _best(q, c, ok) if ok.any() else int(np.lexsort((-q, c))[0])
    else:
        assert target.min_quality is not None
        floor = target.min_quality * float(np.nanmax(column_means(train.quality)))
        ok = q >= floor - 1e-12
        k = int(np.lexsort((-q, c + np.where(ok, 0.0, np.inf)))[0]) if ok.any() \
            else _best(q, c, np.ones(len(q), dtype=bool))
    return Choice(candidates[k], float(q[k]), float(c[k]), bool(ok[k])), cheap


def _best(q: Any, c: Any, ok: Any) -> int:
    """Of the candidates ``ok``, the best quality (ties: the cheaper)."""
    keys = np.where(ok, -np.round(q, 12), np.inf)
    return int(np.lexsort((c, keys))[0])


def cross_validate(router: CascadeRouter, plan: Plan, target: Target,
                   allowed: Allowed = None) -> dict[str, Any]:
    """Each fold's policy chosen on its training part, replayed on its held-out part."""
    quality, cost, calls, folds = [], [], [], []
    for part in plan.parts:
        choice, cheap = choose(router, part.train, target, allowed)
        test = part.test
        sig = router._signals(part.train, test, cheap, inner=False)
        served, called = execute(choice.policy, sig, len(test), len(test.models))
        assert test.cost is not None
        rows = np.arange(len(test))
        quality.append(filled(test.quality)[rows, served])
        cost.append((filled(test.cost) * called).sum(axis=1))
        calls.append(called.sum(axis=1))
        folds.append({"policy": describe(choice.policy, test.models),
                      "train_reached": choice.reached})
    q, c, k = np.concatenate(quality), np.concatenate(cost), np.concatenate(calls)
    return {"quality": float(q.mean()), "cost_per_request": float(c.mean()),
            "calls_mean": float(k.mean()), "calls_max": int(k.max()), "folds": folds}


def calibrate_cascade(router: CascadeRouter, plan: Plan, target: Target,
                      allowed: Allowed = None) -> dict[str, Any]:
    """The policy to deploy (chosen on every row) and its cross-validated figures; with
    ``allowed`` only among those policies (the ones the gateway can be given)."""
    full = plan.pooled
    if full.answers is None:
        raise DataError(f"router {router.name} calibrates on answers; this data has none "
                        "(RouterBench '<model>|model_response' or RouteLLM "
                        "'<model>_response' columns)")
    if router.judge == "agreement" and len(full.models) < 3:
        raise DataError("cascade-agreement needs two cheap models besides the strong one; "
                        "with two models use cascade-learned")
    assert full.cost is not None  # with_costs
    s_cost, s_quality = column_means(full.cost), column_means(full.quality)
    best = int(np.nanargmax(s_quality))
    choice, _ = choose(router, full, target, allowed)
    if not choice.reached:
        raise DataError(_unreachable(target, choice, float(s_quality[best]), full.models))
    cv = cross_validate(router, plan, target, allowed)
    return {
        "router": router.name, "protocol": plan.name, "n": len(full),
        "models": list(full.models),
        "requested": {"max_cost_per_request": target.max_cost,
                      "min_quality": target.min_quality},
        "policy": policy_dict(choice.policy, full.models),
        "chosen_on_all_rows": {"quality": choice.quality, "cost_per_request": choice.cost},
        "cross_validated": {**cv, "relative_quality": cv["quality"] / float(s_quality[best]),
                            "relative_cost": cv["cost_per_request"] / float(s_cost[best])},
        "best_single": {"model": full.models[best], "quality": float(s_quality[best]),
                        "cost_per_request": float(s_cost[best])},
    }


def _unreachable(target: Target, closest: Choice, best_q: float,
                 models: tuple[str, ...]) -> str:
    chain = describe(closest.policy, models)
    if target.max_cost is not None:
        return (f"no cascade costs at most {target.max_cost:g} per request on this data; the "
                f"cheapest is {chain} at {closest.cost:.6g} (quality {closest.quality:.3f})")
    return (f"no cascade reaches {target.min_quality:g} of the best model's quality "
            f"({best_q:.3f}) on this data; the closest is {chain} at "
            f"{closest.quality / best_q:.3f} of it (cost {closest.cost:.6g} per request)")


def describe(policy: Policy, models: tuple[str, ...]) -> str:
    if policy.escalate is None:
        return models[policy.first]
    chain = f"{models[policy.first]} → {models[policy.escalate]}"
    if policy.second is None:
        return f"{chain}, learned judge ≥ {policy.alone:g}"
    partner = f"partner {models[policy.second]}"
    if policy.paired == AGREE:
        return f"{chain}, agreement judge ({partner})"
    return f"{chain}, learned judge ≥ {policy.paired:g} ({partner})"


def policy_dict(policy: Policy, models: tuple[str, ...]) -> dict[str, Any]:
    """The chosen policy as the gateway sees it: chain, judge, partner, threshold."""
    chain = [models[policy.first]] + ([] if policy.escalate is None
                                      else [models[policy.escalate]])
    out: dict[str, Any] = {"chain": chain, "describe": describe(policy, models)}
    if policy.escalate is None:
        return {**out, "judge": None, "partner": None, "threshold": None}
    partner = None if policy.second is None else models[policy.second]
    if policy.paired == AGREE and partner is not None:
        return {**out, "judge": "agreement", "partner": partner, "threshold": 0.5}
    threshold = policy.alone if partner is None else policy.paired
    return {**out, "judge": "learned", "partner": partner, "threshold": float(threshold)}
