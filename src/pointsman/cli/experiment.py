"""``pointsman experiment report NAME``: an online experiment's per-arm figures with 95%
intervals and its verdicts, read from the request log database (the config's, or
``--data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pointsman.cli.common import config_from_option, print_json
from pointsman.errors import InputError

experiment_app = typer.Typer(help="Online experiments: reports.", no_args_is_help=True)


def _ci(cell: dict[str, Any], fmt: str) -> str:
    value, (low, high) = cell["value"], cell["ci95"]
    if value is None:
        return "-"
    if low is None or high is None:
        return format(value, fmt)
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def render(result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]experiment[/bold] {result['experiment']} (unit {result['unit']}, "
                  f"control {result['control']}, margin {result['margin']:g})")
    table = Table("arm", "requests", "$/request", "strong share", "quality", "p95 ms",
                  "saved vs strongest")
    for arm in result["arms"]:
        saved = arm["savings_vs_strongest"]
        table.add_row(arm["arm"], str(arm["requests"]),
                      _ci(arm["cost_per_request_usd"], ".6f"), _ci(arm["strong_share"], ".1%"),
                      _ci(arm["quality"], ".3f") + f" (n={arm['quality']['n']})",
                      _ci(arm["p95_latency_ms"], ".0f"),
                      "-" if saved is None else f"{saved:.1%}")
    console.print(table)
    for line in result["verdicts"]:
        console.print(f"[bold]verdict[/bold]  {line}")
    for arm, why in result["guardrail"].items():
        console.print(f"[bold red]guardrail[/bold red] arm {arm} stopped: {why}")


@experiment_app.command("report")
def report_command(
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help="Request log database (default: the config's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per arm: requests, cost per request, strong share, quality, p95 latency (95% CIs)."""
    cfg = config_from_option(config)
    found = next((e for e in cfg.experiments if e.name == name), None)
    if found is None:
        raise InputError(f"no experiment {name!r} in {cfg.source}; configured: "
                         f"{[e.name for e in cfg.experiments]}")
    # imported here: the service pulls prometheus_client, which `serve --workers` must
    # import only after it has set up the metrics' multiprocess directory
    from pointsman.experiments.data import experiment_rows, log_source
    from pointsman.experiments.report import guardrail_breaches, report
    from pointsman.experiments.service import strong_test

    rows = experiment_rows(data or log_source(cfg.gateway.request_log), name)
    breaches = guardrail_breaches(found, rows)
    result = report(found, rows, strong_test(cfg), breaches)
    result["guardrail"] = breaches
    if as_json:
        print_json(result)
    else:
        render(result)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
