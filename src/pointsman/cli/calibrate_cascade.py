"""``pointsman calibrate --router cascade-learned|cascade-agreement``: the cascade policy
for a cost cap or a quality floor, cross-validated, and its gateway ``cascade`` section."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pointsman.catalog import Catalog
from pointsman.cli.common import config_from_option, print_json
from pointsman.errors import ConfigError, DataError
from pointsman.evaluation.cascade_calibrate import (
    UNWRITABLE,
    Target,
    calibrate_cascade,
    with_costs,
)
from pointsman.evaluation.cascade_replay import CascadeRouter, Policy
from pointsman.evaluation.lab import Part, Plan
from pointsman.evaluation.runner import DataSpec, finite, prepare
from pointsman.learning import OutcomeTable

__all__ = ["Gateway", "Target", "parse_models", "run"]
POLICY_NAME = "calibrated"


@dataclass(frozen=True)
class Gateway:
    """Where and how to write the gateway's equivalent."""

    config_file: Path
    base_config: Path | None  # --config: the catalog when the file does not exist yet
    models: dict[str, str]    # data model name -> catalog model name
    judge_artifact: Path | None


def run(router: str, options: dict[str, Any], spec: DataSpec, target: Target,
        gateway: Gateway | None, as_json: bool) -> None:
    lab = CascadeRouter(router.removeprefix("cascade-"), options)
    plan, _ = prepare(spec)
    plan, unit = _costed(plan)
    if unit != "usd" and target.max_cost is not None:
        raise DataError("--max-cost-per-request needs per-call costs (RouterBench data); "
                        "this data has none: give --min-quality instead")
    allowed = writable(gateway) if gateway is not None else None
    try:
        result = calibrate_cascade(lab, plan, target, allowed)
    except DataError as exc:
        unmapped = (unmapped_error(gateway, plan.pooled.models)
                    if gateway is not None and exc.message.startswith(UNWRITABLE) else None)
        if unmapped is not None:
            raise unmapped from None
        raise
    result["cost_unit"] = unit
    if gateway is not None:
        result["written"] = write(gateway, result["policy"], plan.pooled, lab)
    if as_json:
        print_json(finite(result))
    else:
        _render(result)


def _costed(plan: Plan) -> tuple[Plan, str]:
    parts, unit = [], "usd"
    for part in plan.parts:
        (train, unit), (test, _) = with_costs(part.train), with_costs(part.test)
        parts.append(Part(train, test))
    return Plan(tuple(parts), plan.name), unit


def parse_models(pairs: list[str] | None) -> dict[str, str]:
    """``--gateway-model DATA=CATALOG`` pairs as a mapping."""
    out = {}
    for pair in pairs or []:
        data, sep, catalog = pair.partition("=")
        if not sep or not data.strip() or not catalog.strip():
            raise ConfigError(f"--gateway-model {pair!r}: expected DATA_MODEL=CATALOG_MODEL")
        out[data.strip()] = catalog.strip()
    return out


def write(gateway: Gateway, policy: dict[str, Any], table: OutcomeTable,
          lab: CascadeRouter) -> dict[str, Any]:
    """Write the chosen policy (and, for the learned judge, its artifact) for the gateway."""
    from pointsman.evaluation.calibrate import write_cascade

    if policy["judge"] is None:
        raise DataError(f"not written: at this target one model alone, "
                        f"{policy['chain'][0]}, does best on this data (no cascade to write); "
                        f"route to it, or ask for another target")
    # the policy was chosen among those these mappings let the gateway run (writable)
    names = {m: gateway.models.get(m, m)
             for m in [*policy["chain"], *filter(None, [policy["partner"]])]}
    settings: dict[str, Any] = {"enabled": True, "judge": policy["judge"],
                                "threshold": round(policy["threshold"], 6), "max_steps": 2}
    partner = names.get(policy["partner"]) if policy["partner"] else None
    out: dict[str, Any] = {"config": str(gateway.config_file)}
    if policy["judge"] == "agreement":
        assert partner is not None
        settings["agreement"] = {"second_model": partner, "normaliser": _normaliser(lab)}
    else:
        artifact = _train_judge(gateway, table, policy)
        folder = gateway.config_file.expanduser().absolute().parent
        settings["learned"] = {"artifact": os.path.relpath(artifact.absolute(), folder),
                               **({"second_model": partner} if partner else {})}
        out["judge_artifact"] = str(artifact)
    entry = {"name": POLICY_NAME, "when": {}, "chain": [names[m] for m in policy["chain"]]}
    write_cascade(gateway.config_file, settings, entry)
    return {**out, "cascade": {**settings, "policies": [entry]}}


def _normaliser(lab: CascadeRouter) -> str:
    from pointsman.learned import answers as an

    return next(name for name in an.NORMALISERS if an.normaliser(name) is lab.normalise)


def _train_judge(gateway: Gateway, table: OutcomeTable, policy: dict[str, Any]) -> Path:
    """The answer judge of the chosen policy (its first model's answers, its partner's),
    trained on every row and saved where the config will point."""
    from pointsman.artifacts import save_learner
    from pointsman.learned.answer_judge import AnswerJudgeLearner

    learner = AnswerJudgeLearner({"models": [policy["chain"][0]],
                                  **({"partner": policy["partner"]} if policy["partner"]
                                     else {})})
    learner.fit(table)
    file = gateway.config_file
    path = gateway.judge_artifact or file.with_name(f"{file.stem}-answer-judge.npz")
    return save_learner(learner, path, {"calibrated_for": policy["describe"]})


def writable(gateway: Gateway) -> Callable[[Policy, tuple[str, ...]], bool]:
    """Which policies the gateway can be given with these ``--gateway-model`` mappings:
    models that are all catalog models, escalating to a higher catalog quality, with a
    partner no weaker than the first model."""
    catalog = _catalog(gateway)

    def quality(model: str) -> float | None:
        name = gateway.models.get(model, model)
        return catalog.get(name).quality if name in catalog else None

    def allowed(policy: Policy, models: tuple[str, ...]) -> bool:
        if policy.escalate is None:  # one model alone: said so when writing
            return quality(models[policy.first]) is not None
        first, up = quality(models[policy.first]), quality(models[policy.escalate])
        partner = None if policy.second is None else quality(models[policy.second])
        if first is None or up is None or up <= first:
            return False
        return policy.second is None or (partner is not None and partner >= first)
    return allowed


def _catalog(gateway: Gateway) -> Catalog:
    """The catalog of the config written to (or of ``--config`` while it does not exist)."""
    from pointsman.router import resolve_catalog

    existing = gateway.config_file if gateway.config_file.is_file() else gateway.base_config
    return resolve_catalog(config_from_option(existing))


def unmapped_error(gateway: Gateway, models: Sequence[str]) -> ConfigError | None:
    """The error naming the data models that map to no catalog model, if any."""
    catalog = _catalog(gateway)
    missing = [m for m in models if gateway.models.get(m, m) not in catalog]
    if not missing:
        return None
    return ConfigError("not written: name the catalog model of "
                       + ", ".join(f"--gateway-model '{m}=<catalog model>'" for m in missing)
                       + f" (catalog models: {', '.join(sorted(catalog.models))})")


def _render(result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    usd = result["cost_unit"] == "usd"
    policy, cv, best = result["policy"], result["cross_validated"], result["best_single"]
    console.print(f"[bold]policy[/bold]     {policy['describe']}")
    cost = (f"${cv['cost_per_request']:.6f}/request" if usd else
            f"{100 * cv['cost_per_request']:.1f}% strong calls")
    console.print(f"[bold]held out[/bold]   quality {cv['quality']:.4f} "
                  f"({100 * cv['relative_quality']:.1f}% of {best['model']}), {cost}"
                  + (f" ({100 * cv['relative_cost']:.1f}% of its cost)" if usd else "")
                  + f", {cv['calls_mean']:.2f} calls/request")
    console.print(f"[bold]on[/bold]         {result['n']} prompts, {result['protocol']} "
                  f"(each fold's policy chosen on its training folds)")
    if "written" in result:
        written = result["written"]
        console.print(f"[bold]written[/bold]    {written['config']}"
                      + (f"; judge artifact {written['judge_artifact']}"
                         if "judge_artifact" in written else "")
                      + "; requests opt in with the model 'cascade'")
