"""``pointsman spend``: spend, budget, remaining, top models and savings for a key, user,
team or everyone, over the current day or month (and the prompt cache's reads and writes
and the reasoning tokens, when the log has any)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from pointsman.budget.factory import build_ledger
from pointsman.budget.spend import Scope, spend_report
from pointsman.cli.common import config_from_option, print_json
from pointsman.config import PointsmanConfig
from pointsman.errors import InputError
from pointsman.stores.labels_sqlite import SqliteLabelStore
from pointsman.stores.requestlog_sqlite import SqliteRequestLog


def _scope(key: str | None, user: str | None, team: str | None
           ) -> tuple[Scope | None, str | None]:
    given = [(s, v) for s, v in (("key", key), ("user", user), ("team", team)) if v]
    if len(given) > 1:
        raise InputError("give at most one of --key, --user, --team")
    if not given:
        return None, None
    scope, value = given[0]
    return scope, value  # type: ignore[return-value]


async def _report(cfg: PointsmanConfig, log_path: Path, scope: Scope | None,
                  subject: str | None, window: Literal["day", "month"]) -> dict[str, Any]:
    if not log_path.exists():
        raise InputError(f"request log {log_path} does not exist (give --log)")
    log = SqliteRequestLog(log_path)
    labels = SqliteLabelStore(log_path)
    store = cfg.budgets.store
    has_ledger = store != "memory" and (store == "redis" or Path(cfg.budgets.sqlite_path).exists())
    ledger = build_ledger(cfg.budgets, redis=cfg.redis) if has_ledger else None
    try:
        return await spend_report(cfg.budgets, log, ledger, scope, subject, window,
                                  labels=labels)
    finally:
        await labels.aclose()
        await log.aclose()
        if ledger is not None:
            await ledger.aclose()


def _render(report: dict[str, Any]) -> None:
    console = Console(highlight=False)
    who = f"{report['scope']} {report['subject']}" if report["subject"] else "everyone"
    console.print(f"[bold]{who}[/bold], this {report['window']} (since {report['since']}, "
                  f"resets {report['resets_at']})")
    budget = report["budget_usd"]
    console.print(f"spent      ${report['spent_usd']:.6f} over {report['requests']} requests")
    if budget is not None:
        console.print(f"budget     ${budget:.2f}   remaining ${report['remaining_usd']:.6f}")
    console.print(f"savings    ${report['savings_usd']:.6f} "
                  f"({report['savings_fraction']:.1%}) vs ${report['baseline_cost_usd']:.6f} "
                  "always on the most expensive candidate")
    if "quality" in report:
        console.print(f"quality    {_quality(report['quality'])}")
        judging = report["judging"]
        console.print(f"judging    ${judging['cost_usd']:.6f} over {judging['samples']} "
                      "samples (own budget, not in spent)")
    tokens = report.get("tokens") or {}
    if tokens.get("cache_read") or tokens.get("cache_write") or tokens.get("reasoning"):
        console.print(f"tokens     {tokens['prompt']} in ({tokens['cache_read']} cache reads, "
                      f"{tokens['cache_write']} cache writes), {tokens['completion']} out "
                      f"({tokens['reasoning']} reasoning)")
    table = Table("model", "requests", "cost $", "baseline $")
    for m in report["top_models"]:
        table.add_row(m["model"], str(m["requests"]), f"{m['cost_usd']:.6f}",
                      f"{m['baseline_cost_usd']:.6f}")
    console.print(table)


def _quality(quality: dict[str, Any]) -> str:
    """``judge 0.620 (40 labels), feedback 0.800 (12 labels)``, for the answering models."""
    parts = [f"{kind} {q['mean']:.3f} ({q['labels']} labels)" for kind, q in quality.items()
             if q["labels"]]
    return ", ".join(parts) if parts else "no feedback or judge labels in this window"


def spend(
    key: Annotated[str | None, typer.Option("--key", help="One API key.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="One user.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="One team.")] = None,
    window: Annotated[str, typer.Option(help="day or month (in budgets.timezone).")] = "day",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    log: Annotated[Path, typer.Option("--log", help="SQLite request log.")]
    = Path("pointsman-requests.db"),
) -> None:
    """Show spend, budget, remaining, top models by cost and savings."""
    if window not in ("day", "month"):
        raise InputError(f"--window must be day or month, got {window!r}")
    scope, subject = _scope(key, user, team)
    cfg = config_from_option(config)
    report = asyncio.run(_report(cfg, log, scope, subject,
                                 "day" if window == "day" else "month"))
    if as_json:
        print_json(report)
    else:
        _render(report)


def register(app: typer.Typer) -> None:
    app.command("spend")(spend)
