"""``pointsman judge``: judged samples over a replayed request log (see
:mod:`pointsman.judging.replay`): every answered record with its prompt, graded by the
config's ``judging`` section (reference and judge models, mode, budget), the labels stored
in the log's database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from pointsman.cli.common import config_from_option, print_json
from pointsman.config import PointsmanConfig


async def _run(cfg: PointsmanConfig, data: str, limit: int | None,
               again: bool) -> dict[str, Any]:
    from pointsman.gateway.app import default_deployments
    from pointsman.judging.replay import judge_log
    from pointsman.router import resolve_catalog

    deployments = default_deployments(cfg, resolve_catalog(cfg))
    try:
        return await judge_log(cfg, data, deployments, limit=limit, again=again)
    finally:
        aclose = getattr(deployments, "aclose", None)
        if aclose is not None:
            await aclose()


def judge(
    data: Annotated[str | None, typer.Option(
        "--data", help="Request log database (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    limit: Annotated[int | None, typer.Option(help="Judge at most this many records.")]
    = None,
    again: Annotated[bool, typer.Option("--again", help="Judge records judged before too.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Judge every answered request of a request log that has its prompt."""
    from pointsman.experiments.data import log_source

    cfg = config_from_option(config)
    result = asyncio.run(_run(cfg, data or log_source(cfg.gateway.request_log), limit, again))
    if as_json:
        print_json(result)
        return
    mean = result["mean_score"]
    print(f"judged {result['judged']} of {result['records']} records ({result['mode']} vs "
          f"{result['reference_model']}, judge {result['judge_model']}): mean score "
          f"{'-' if mean is None else format(mean, '.3f')}; skipped {result['skipped']}, "
          f"refused {result['refused']}, failed {result['failed']}; "
          f"spent ${result['spent_usd']:.6f}")
    if result["without_prompt"]:
        print(f"{result['without_prompt']} answered records have no prompt to replay "
              f"(logged without gateway.request_log.log_messages: true)")


def register(app: typer.Typer) -> None:
    app.command("judge")(judge)
