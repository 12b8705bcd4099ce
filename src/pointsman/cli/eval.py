"""``pointsman eval``: replay routers over outcome data, without calling any model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pointsman.cli.common import config_from_option, print_json
from pointsman.cli.lab_checks import training_data_notes
from pointsman.evaluation.lab import Progress as Advance
from pointsman.evaluation.report import write_plot, write_report
from pointsman.evaluation.runner import (
    DataSpec,
    finite,
    parse_options,
    prepare,
    run,
    split_names,
)
from pointsman.progress import progress

Result = dict[str, Any]

DataOpt = Annotated[str | None, typer.Option("--data", help="Outcome data: file, folder or glob.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f",
                                        help="routellm | routerbench | log")]
FoldsOpt = Annotated[int, typer.Option("--folds", min=2, help="k-fold cross-validation.")]
MaxFoldsOpt = Annotated[int | None, typer.Option(
    "--max-folds", min=1, help="Evaluate only the first N folds (quick runs of slow learners).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the fold split.")]
TrainOpt = Annotated[str | None, typer.Option("--train", help="Training data (with --test).")]
TestOpt = Annotated[str | None, typer.Option("--test", help="Test data (with --train).")]
WeakOpt = Annotated[str | None, typer.Option("--weak", help="Weak model column (two-model).")]
StrongOpt = Annotated[str | None, typer.Option("--strong", help="Strong model column.")]
OptionsOpt = Annotated[list[str] | None, typer.Option(
    "--router-option", help="Router option k=v (or router:k=v); repeatable.")]
SampleOpt = Annotated[int | None, typer.Option(
    "--sample", min=10, help="Use a seeded random sample of this many prompts (a quick run).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")]


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Advance]:
    """A progress bar on standard error when it is a terminal (see pointsman.progress)."""
    with progress(total, label) as advance:
        yield advance


def _render(results: list[Result]) -> None:
    console = Console(highlight=False)
    first = results[0]
    console.print(f"[bold]data[/bold]      {first['data']} ({first['n_test']} test prompts)")
    console.print(f"[bold]protocol[/bold]  {first['protocol']}")
    if first["kind"] == "two-model":
        _render_two(console, results)
    else:
        _render_many(console, results)
    for note in sorted({n for r in results for n in r.get("notes", [])}):
        console.print(f"[dim]note: {note}[/dim]")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _render_two(console: Console, results: list[Result]) -> None:
    first = results[0]
    console.print(f"[bold]weak[/bold]      {first['weak']['model']}: "
                  f"{_pct(first['weak']['quality'])}")
    console.print(f"[bold]strong[/bold]    {first['strong']['model']}: "
                  f"{_pct(first['strong']['quality'])}")
    console.print(f"[bold]oracle[/bold]    {_pct(first['oracle']['quality'])} with "
                  f"{_pct(first['oracle']['strong_share'])} strong calls")
    table = Table("router", "APGR", "CPT(20%)", "CPT(50%)", "CPT(80%)", "ROC AUC")
    for r in results:
        table.add_row(r["router"], _num(r["apgr"]), _pct(r["cpt20"]), _pct(r["cpt50"]),
                      _pct(r["cpt80"]), _num(r["auc"]))
    table.add_row("[dim]random baseline[/dim]", "0.5000", "20.0%", "50.0%", "80.0%", "0.5")
    console.print(table)


def _render_many(console: Console, results: list[Result]) -> None:
    first = results[0]
    best = first["best_single"]
    console.print(f"[bold]best[/bold]      {best['model']}: {best['quality']:.4f} at "
                  f"${best['cost']:.6f}/request")
    console.print(f"[bold]oracle[/bold]    {first['oracle']['quality']:.4f} at "
                  f"${first['oracle']['cost']:.6f}/request")
    console.print(f"[bold]singles[/bold]   AIQ of the single models' front "
                  f"{first['singles_aiq']:.4f}")
    table = Table("router", "AIQ", "$ to 90% of best", "$ to 95%", "$ to 100%")
    for r in results:
        reach = r["cost_to_reach"]
        table.add_row(r["router"], _num(r["aiq"]), _num(reach["90%"], 6),
                      _num(reach["95%"], 6), _num(reach["100%"], 6))
    console.print(table)
    for r in results:
        console.print(f"[dim]{r['router']}: {r['policy']}[/dim]")


def eval_command(
    data: DataOpt = None,
    format: FormatOpt = "routellm",
    router: Annotated[str, typer.Option(
        "--router", "-r", help="Router name(s), comma-separated, or an artifact path.")]
    = "heuristic",
    router_option: OptionsOpt = None,
    folds: FoldsOpt = 5,
    max_folds: MaxFoldsOpt = None,
    seed: SeedOpt = 0,
    train: TrainOpt = None,
    test: TestOpt = None,
    weak: WeakOpt = None,
    strong: StrongOpt = None,
    budget: Annotated[list[float] | None, typer.Option(
        "--budget", help="Average cost per request to report the quality at (many-model).")]
    = None,
    config: ConfigOpt = None,
    sample: SampleOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG plot.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report.")]
    = None,
    shadow_config: Annotated[Path | None, typer.Option(
        "--shadow-config", help="With --format log: replay the log through this config.")]
    = None,
) -> None:
    """Replay routers over benchmark outcomes or a labelled request log and measure them."""
    if shadow_config is not None:
        from pointsman.cli.shadow import shadow_report

        shadow_report(data, shadow_config, config, as_json)
        return
    names = split_names(router)
    spec = DataSpec(format, data, train, test, folds, seed, weak, strong, max_folds, sample)
    options = parse_options(router_option or [], names)
    cfg = config_from_option(config)
    plan = prepare(spec)
    warnings = training_data_notes(names, data or test)
    with progress_bar(len(plan[0].parts) * len(names), "evaluating") as advance:
        results = [finite(r) for r in run(spec, names, options, cfg, budget or (), advance,
                                          plan)]
    for result in results:
        if result["router"] in warnings:
            result["notes"] = [*result.get("notes", []), warnings[result["router"]]]
    if plot is not None:
        write_plot(results, plot)
    if report is not None:
        write_report(results, report, str(plot) if plot else None)
    if as_json:
        print_json(results[0] if len(results) == 1 else _comparison(results))
    else:
        _render(results)


def _comparison(results: list[Result]) -> Result:
    first = results[0]
    return {"kind": first["kind"], "protocol": first["protocol"], "data": first["data"],
            "n_test": first["n_test"], "models": first["models"],
            "routers": results}


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
