"""The ``pointsman`` command line: thin over the library.

Each subcommand lives in its own module with a ``register(app)`` function, listed in
``COMMAND_MODULES``. Every :class:`PointsmanError` becomes one line on standard error
and exit status 2; there are no tracebacks for bad input.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Annotated

import typer

from pointsman.errors import PointsmanError

COMMAND_MODULES: list[str] = ["pointsman.cli.route", "pointsman.cli.spend",
                              "pointsman.cli.train", "pointsman.cli.serve",
                              "pointsman.cli.keys",
                              "pointsman.cli.eval", "pointsman.cli.calibrate",
                              "pointsman.cli.shadow", "pointsman.cli.experiment",
                              "pointsman.cli.routers", "pointsman.cli.judge"]

app = typer.Typer(
    name="pointsman",
    help="Route each LLM request to the cheapest model that will answer it well.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from pointsman import __version__

        print(f"pointsman {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Route each LLM request to the cheapest model that will answer it well."""


for _module in COMMAND_MODULES:
    import_module(_module).register(app)


def main() -> None:
    try:
        app(standalone_mode=True)
    except PointsmanError as exc:
        print(f"pointsman: error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("pointsman: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
