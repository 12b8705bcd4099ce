"""``pointsman calibrate``: the threshold that gives a share of strong calls or a cost cap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pointsman.cli.common import config_from_option, print_json
from pointsman.cli.eval import (
    ConfigOpt,
    DataOpt,
    FoldsOpt,
    FormatOpt,
    OptionsOpt,
    SampleOpt,
    SeedOpt,
    StrongOpt,
    WeakOpt,
)
from pointsman.errors import ConfigError, DataError, InputError
from pointsman.evaluation.calibrate import calibrate, write_threshold
from pointsman.evaluation.routers import CASCADES, is_artifact_path, lab_router
from pointsman.evaluation.runner import DataSpec, finite, parse_options, prepare
from pointsman.registry import learners, scorers


def gateway_scorer(router: str, options: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The ``router.scorer`` (and options) that gives the gateway the same scores."""
    if is_artifact_path(router):
        from pointsman.artifacts import read_artifact

        return read_artifact(router).name, {"artifact": router}
    if router in learners:
        raise ConfigError(f"router {router!r} is trained per fold here; to write a config, "
                          f"train an artifact (`pointsman train`) and calibrate that file")
    if router in scorers:
        return router, (options or None)
    raise ConfigError(f"router {router!r} cannot run in the gateway (it is a lab baseline)")


def calibrate_command(
    router: Annotated[str, typer.Option("--router", "-r", help="Router name or artifact.")]
    = "heuristic",
    data: DataOpt = None,
    format: FormatOpt = "routellm",
    strong_share: Annotated[float | None, typer.Option(
        "--strong-share", min=0.0, max=1.0, help="Target share of strong calls.")] = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost-per-request", min=0.0, help="Cap on the average cost per request.")]
    = None,
    router_option: OptionsOpt = None,
    folds: FoldsOpt = 5,
    seed: SeedOpt = 0,
    weak: WeakOpt = None,
    strong: StrongOpt = None,
    config: ConfigOpt = None,
    sample: SampleOpt = None,
    write_config: Annotated[Path | None, typer.Option(
        "--write-config", help="Merge router.threshold/scorer/mode into this YAML file.")]
    = None,
    gateway_strong: Annotated[str | None, typer.Option(
        "--gateway-strong", help="router.strong_model to write (a catalog model).")] = None,
    gateway_weak: Annotated[str | None, typer.Option(
        "--gateway-weak", help="router.weak_model to write (a catalog model).")] = None,
    min_quality: Annotated[float | None, typer.Option(
        "--min-quality", min=0.0, max=1.0, help="Cascades: a quality floor, as a fraction "
        "of the best single model's quality (e.g. 0.95).")] = None,
    gateway_model: Annotated[list[str] | None, typer.Option(
        "--gateway-model", help="Cascades: DATA_MODEL=CATALOG_MODEL, the gateway model "
        "playing a data model's part (repeat).")] = None,
    judge_artifact: Annotated[Path | None, typer.Option(
        "--judge-artifact", help="cascade-learned: where to write the answer-judge "
        "artifact (default <config>-answer-judge.npz beside the config).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the threshold that gives a share of strong calls (or a cost cap) on the data;
    for a cascade router, the cascade policy for a cost cap or a quality floor."""
    options = parse_options(router_option or [], [router])[router]
    if router in CASCADES:
        from pointsman.cli import calibrate_cascade as cc

        if strong_share is not None:
            raise InputError("--strong-share is for threshold routers; a cascade takes "
                             "--max-cost-per-request or --min-quality")
        gateway = None if write_config is None else cc.Gateway(
            write_config, config, cc.parse_models(gateway_model), judge_artifact)
        spec = DataSpec(format, data, None, None, folds, seed, weak, strong, None, sample)
        cc.run(router, options, spec, cc.Target(max_cost, min_quality), gateway, as_json)
        return
    if min_quality is not None or gateway_model or judge_artifact is not None:
        raise InputError("--min-quality, --gateway-model and --judge-artifact are for the "
                         "cascade routers (cascade-learned, cascade-agreement)")
    plan, two = prepare(DataSpec(format, data, None, None, folds, seed, weak, strong, sample))
    if not two:
        raise DataError("calibration sets the two-model threshold; for data with more than "
                        "two models name the pair with --weak and --strong")
    scorer = gateway_scorer(router, options) if write_config else None
    lab = lab_router(router, options, config_from_option(config))
    result = calibrate(lab, plan, strong_share=strong_share, max_cost=max_cost)
    result["gateway_model"] = _virtual_model(router, options, result["threshold"])
    if write_config is not None and scorer is not None:
        strong_model, weak_model = gateway_pair(write_config, config, gateway_strong,
                                                gateway_weak)
        write_threshold(write_config, result["threshold"], scorer[0],
                        _portable(scorer[1], write_config), strong_model, weak_model)
        result["written"] = str(write_config)
    if as_json:
        print_json(finite(result))
    else:
        _render(result)


def gateway_pair(write_config: Path, config: Path | None, strong: str | None,
                 weak: str | None) -> tuple[str, str]:
    """``router.strong_model`` / ``weak_model`` to write: as given, else what the file (or
    the config) already says, else the candidates' best and cheapest by the catalog."""
    from pointsman.router import resolve_catalog

    existing = write_config if write_config.is_file() else config
    cfg = config_from_option(existing)
    catalog = resolve_catalog(cfg)
    specs = [catalog.get(name) for name in cfg.router.candidates if name in catalog]
    best = max(specs, key=lambda m: (m.quality, -m.input_price)).name if specs else None
    cheapest = min(specs, key=lambda m: (m.input_price + m.output_price, -m.quality)).name \
        if specs else None
    strong = strong or cfg.router.strong_model or best
    weak = weak or cfg.router.weak_model or cheapest
    if not (strong and weak):
        raise ConfigError("give --gateway-strong and --gateway-weak (catalog models)")
    return strong, weak


def _portable(options: dict[str, Any] | None, write_config: Path) -> dict[str, Any] | None:
    """An artifact path written relative to the config file, as the loader reads it."""
    if not options or "artifact" not in options:
        return options
    artifact = Path(options["artifact"]).absolute()
    folder = write_config.expanduser().absolute().parent
    return {**options, "artifact": os.path.relpath(artifact, folder)}


def _render(result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]threshold[/bold]  {result['threshold']:.6f}  (router "
                  f"{result['router']}; strong when score ≥ threshold)")
    line = (f"[bold]gives[/bold]      {100 * result['strong_share']:.1f}% strong calls, "
            f"quality {100 * result['quality']:.2f}%")
    if result.get("pgr") is not None:
        line += f", PGR {result['pgr']:.3f}"
    if result.get("cost_per_request") is not None:
        line += f", ${result['cost_per_request']:.6f}/request"
    console.print(line)
    console.print(f"[bold]on[/bold]         {result['n']} prompts, {result['protocol']}")
    model = result["gateway_model"] or "(a lab baseline: not available in the gateway)"
    console.print(f"[bold]gateway[/bold]    model {model}"
                  + (f"; written to {result['written']}" if "written" in result else ""))


def _virtual_model(router: str, options: dict[str, Any], threshold: float) -> str | None:
    """The gateway's virtual model name for this router and threshold, when it has one."""
    try:
        scorer, _ = gateway_scorer(router, options)
    except ConfigError:
        return None
    return f"router-{scorer}-{threshold:g}"


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
