"""``pointsman shadow``: replay a request log through another router configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pointsman.cli.common import print_json
from pointsman.config import load_config
from pointsman.errors import InputError
from pointsman.evaluation.logs import logged_requests
from pointsman.evaluation.shadow import shadow_replay
from pointsman.router import Router


def shadow_report(log: str | None, shadow_config: Path, base_config: Path | None,
                  as_json: bool) -> dict[str, Any]:
    """Run the replay and print it (JSON or a readable summary)."""
    if not log:
        raise InputError("give the request log with --data PATH (JSON Lines)")
    del base_config  # the logged side is what was logged; only the shadow config matters
    result = shadow_replay(logged_requests(log), Router(load_config(shadow_config)))
    result["log"], result["shadow_config"] = log, str(shadow_config)
    if as_json:
        print_json(result)
    else:
        _render(result)
    return result


def _render(result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]log[/bold]      {result['log']} ({result['n_requests']} requests, "
                  f"{result['unroutable']} not routable by the shadow config)")
    console.print(f"[bold]shadow[/bold]   {result['shadow_config']} "
                  f"({result['shadow']['strategy']}); strong = {result['strong_definition']}")
    table = Table("", "strong share", "estimated cost ($)", "top models")
    for side in ("logged", "shadow"):
        data = result[side]
        top = ", ".join(f"{m} {c}" for m, c in list(data["models"].items())[:4])
        table.add_row(side, f"{100 * data['strong_share']:.1f}%",
                      f"{data['estimated_cost_usd']:.6f}", top)
    console.print(table)
    change = result["change"]
    ratio = change["estimated_cost_ratio"]
    console.print(f"[bold]change[/bold]   strong share {100 * change['strong_share']:+.1f} "
                  f"points; estimated cost {change['estimated_cost_usd']:+.6f} $"
                  + (f" (× {ratio:.3f})" if ratio is not None else "")
                  + f"; same model for {100 * result['agreement']:.1f}% of requests")


def shadow(
    log: Annotated[str, typer.Option("--data", help="Request log (JSON Lines file/folder).")],
    shadow_config: Annotated[Path, typer.Option("--shadow-config",
                                                help="The router config to replay.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a request log through another router config; compare strong share and cost."""
    shadow_report(log, shadow_config, None, as_json)


def register(app: typer.Typer) -> None:
    app.command("shadow")(shadow)
