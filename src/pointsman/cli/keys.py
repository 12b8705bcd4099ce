"""``pointsman keys add | list | revoke``: API keys in the gateway's keys database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pointsman.cli.common import config_from_option, print_json
from pointsman.errors import ConfigError

keys_app = typer.Typer(help="Manage the gateway's API keys (gateway.keys_db).",
                       no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")]


def _db(config: Path | None) -> str:
    path = config_from_option(config).gateway.keys_db
    if path is None:
        raise ConfigError("gateway.keys_db is not set: name the SQLite file that keeps the keys")
    return path


@keys_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name for the key.")],
    config: ConfigOption = None,
    user: Annotated[str | None, typer.Option(help="Owner (budgets, request log).")] = None,
    team: Annotated[str | None, typer.Option(help="Owner's team.")] = None,
    plan: Annotated[str | None, typer.Option(help="Budget plan.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="A model (or pattern such as router-*) it may use; repeat.")] = None,
    admin: Annotated[bool, typer.Option(help="May read /v1/spend and set owner headers.")]
    = False,
) -> None:
    """Make a key and print it (it is shown only this once)."""
    from pointsman.gateway.keystore import add_key

    print(add_key(_db(config), name, user=user, team=team, plan=plan, models=model,
                  admin=admin))


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List the keys (names and owners; never the keys)."""
    from pointsman.gateway.keystore import load_keys

    print_json([k.summary() for k in load_keys(_db(config))])


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")],
           config: ConfigOption = None) -> None:
    """Revoke a key (the gateway stops accepting it within gateway.keys_db_reload_s)."""
    from pointsman.gateway.keystore import revoke_key

    revoke_key(_db(config), name)
    print(f"revoked {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
