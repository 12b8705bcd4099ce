"""``pointsman keys add | list | revoke``: API keys in the gateway's keys database."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated

import typer

from pointsman.cli.common import config_from_option, print_json
from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError
from pointsman.suggest import did_you_mean

keys_app = typer.Typer(help="Manage the gateway's API keys (gateway.keys_db).",
                       no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")]
DbOption = Annotated[Path | None, typer.Option(
    "--db", help="The keys database (default: the config's gateway.keys_db).")]
VIRTUAL = ("auto", "cascade")
VIRTUAL_PREFIXES = ("router-", "cascade-")


def _db(config: Path | None, db: Path | None) -> str:
    if db is not None:
        return str(db)
    path = config_from_option(config).gateway.keys_db
    if path is None:
        raise ConfigError("no keys database: give --db FILE, or a --config whose "
                          "gateway.keys_db names the SQLite file that keeps the keys")
    return path


def check_models(models: list[str], config: PointsmanConfig) -> None:
    """Refuse a ``--model`` that names no catalog model, route or alias: a typo makes a
    dead key. Passthrough families are not enough (``gpt-99`` would pass as ``gpt-*``);
    give the pattern itself to allow a family."""
    from pointsman.router import resolve_catalog

    catalog = set(resolve_catalog(config).models)
    patterns = [p for alias in config.aliases for p in alias.match]
    for name in models:
        if (name in catalog or name in VIRTUAL or name.startswith(VIRTUAL_PREFIXES)
                or any(ch in name for ch in "*?[")
                or any(fnmatch.fnmatchcase(name, p) for p in patterns)):
            continue
        hint = did_you_mean(name, [*catalog, *VIRTUAL])
        raise ConfigError(f"--model {name!r} is not a catalog model, auto, cascade, a "
                          f"router-*/cascade-* name, a pattern or an alias{hint}")


@keys_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name for the key.")],
    config: ConfigOption = None,
    db: DbOption = None,
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

    check_models(model or [], config_from_option(config))
    print(add_key(_db(config, db), name, user=user, team=team, plan=plan, models=model,
                  admin=admin))


@keys_app.command("list")
def list_keys(config: ConfigOption = None, db: DbOption = None) -> None:
    """List the keys (names and owners; never the keys)."""
    from pointsman.gateway.keystore import load_keys

    print_json([k.summary() for k in load_keys(_db(config, db))])


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")],
           config: ConfigOption = None, db: DbOption = None) -> None:
    """Revoke a key (the gateway stops accepting it within gateway.keys_db_reload_s)."""
    from pointsman.gateway.keystore import revoke_key

    revoke_key(_db(config, db), name)
    print(f"revoked {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
