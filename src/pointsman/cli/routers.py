"""``pointsman routers``: every router, cascade and judge name, with its kind and needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pointsman.cli.common import config_from_option, print_json
from pointsman.router_list import router_list


def routers(
    config: Annotated[Path | None, typer.Option("--config", "-c",
                                                help="Config file (its rules are listed).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the router, cascade and judge names that eval, route, train and the gateway
    accept."""
    found = router_list(config_from_option(config))
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    table = Table("name", "kind", "accepted by", "answers", "torch", "description",
                  box=None, pad_edge=False)
    for r in found:
        table.add_row(r.name, r.kind, ",".join(r.accepted_by),
                      "needs" if r.needs_answers else "-", "needs" if r.needs_torch else "-",
                      r.description)
    Console(highlight=False, width=200).print(table)


def register(app: typer.Typer) -> None:
    app.command("routers")(routers)
