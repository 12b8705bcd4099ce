"""``pointsman route``: explain the routing decision for one prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pointsman.cli.common import config_from_option, parse_metadata, print_json, read_prompt
from pointsman.router import Router
from pointsman.types import Decision, RouteRequest


def _render(decision: Decision, prices_as_of: str) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]model[/bold]      {decision.model}")
    console.print(f"[bold]reason[/bold]     {decision.reason}")
    console.print(f"[bold]complexity[/bold] {decision.scores['complexity']:.1f} / 100"
                  f"   task type: {decision.task_type}   strategy: {decision.strategy}")
    signals = ", ".join(f"{k} {v:+.1f}" for k, v in decision.signals.items()) or "none"
    console.print(f"[bold]signals[/bold]    {signals}")
    console.print(f"[bold]rule[/bold]       {decision.rule or 'none matched'}")
    console.print(f"[bold]fallbacks[/bold]  {' → '.join(decision.fallbacks) or 'none'}")
    console.print(
        f"[bold]cost[/bold]       ${decision.estimated_cost_usd:.6f} estimated "
        f"({decision.input_tokens} in + {decision.output_tokens} out tokens) vs "
        f"${decision.baseline_cost_usd:.6f} on {decision.baseline_model}: saves "
        f"${decision.savings_usd:.6f} (prices as of {prices_as_of})")
    table = Table("candidate", "total", "fit", "cost", "latency", "est. $", title=None)
    for c in decision.candidates:
        table.add_row(c.model, f"{c.total:.3f}", f"{c.fit:.2f}", f"{c.cost:.2f}",
                      f"{c.latency:.2f}", f"{c.estimated_cost_usd:.6f}")
    for name, why in decision.filtered_out.items():
        table.add_row(f"[dim]{name}[/dim]", "-", "-", "-", "-", f"[dim]{why}[/dim]")
    console.print(table)


def route(
    prompt: Annotated[str | None, typer.Argument(help="The prompt; omit or '-' to read stdin.")]
    = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    model: Annotated[str | None, typer.Option(help="Honour this model explicitly.")] = None,
    tools: Annotated[int, typer.Option(min=0, help="Number of tools the request offers.")] = 0,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Expected output tokens.")]
    = None,
    meta: Annotated[list[str] | None, typer.Option(
        "--meta", help="Request metadata key=value (task_type, plan, realtime, ...).")] = None,
) -> None:
    """Route a prompt and explain the decision and its cost."""
    text = read_prompt(prompt)
    cfg = config_from_option(config)
    router = Router(cfg)
    request = RouteRequest.from_prompt(text, tools_count=tools, max_output_tokens=max_tokens,
                                       metadata=parse_metadata(meta or []))
    decision = router.decide(request, model=model)
    if as_json:
        print_json({**decision.to_dict(), "prices_as_of": router.catalog.prices_as_of})
    else:
        _render(decision, router.catalog.prices_as_of)


def register(app: typer.Typer) -> None:
    app.command("route")(route)
