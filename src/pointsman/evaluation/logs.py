"""pointsman's request log (JSON Lines) as outcome data and as replayable requests.

One JSON object per line, as :class:`~pointsman.requestlog.RequestRecord` writes it
(``RequestRecord.to_json``). The fields used here:

* the prompt: the last ``user`` message of ``messages`` (string content, or OpenAI content
  parts whose ``text`` parts are joined); a plain ``prompt`` string is accepted too;
* ``model``: the model that answered; ``cost_usd``: what that call cost;
* ``quality``: the label, a number in [0, 1] for the answering model, or a mapping
  ``{model: quality}`` when several models' answers were graded (for example after a
  shadow or A/B run). Records without a label, or that did not end ``ok``, are skipped
  and counted in the table's notes.

Records with the same prompt are merged into one row: each model's quality (and cost) is
the mean over the records where it was graded; every other cell is ``nan`` (unknown).

The gateway's SQLite or PostgreSQL request log is read directly too (``sqlite:///path``,
a SQLite file, or a DSN; see :mod:`pointsman.evaluation.logdb`), with its stored labels as
``quality``. Records logged without their prompt (``log_messages`` off) are skipped and
counted: there is nothing to score or replay.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pointsman.errors import DataError
from pointsman.learning import OutcomeTable
from pointsman.types import Message, RouteRequest


@dataclass(frozen=True)
class LoggedRequest:
    """One replayable record: the request as routed and what was logged about it."""

    request: RouteRequest
    model: str | None
    estimated_cost_usd: float
    cost_usd: float


def log_files(path: str | Path) -> list[Path]:
    where = Path(path).expanduser()
    if where.is_dir():
        files = sorted([*where.rglob("*.jsonl"), *where.rglob("*.json")])
        if not files:
            raise DataError(f"{where}: folder holds no .jsonl file")
        return files
    if not where.is_file():
        raise DataError(f"{where}: request log not found")
    return [where]


def json_lines(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every JSON object of one JSON Lines file with its line number; blank lines skipped.

    A line that is not a JSON object is a :class:`DataError` naming the file and line.
    """
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}: line {number} is not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise DataError(f"{file}: line {number} is not a JSON object")
        yield number, item


NO_PROMPT = ("records without their prompt (the gateway logs prompts only with "
             "gateway.request_log.log_messages: true; their prompt_hash joins them with "
             "prompts kept elsewhere)")


def records(path: str | Path) -> Iterator[tuple[Path | str, int, dict[str, Any]]]:
    """Every JSON object of the log, with its file (or database) and line (row) number."""
    from pointsman.evaluation.logdb import db_records, is_database

    if is_database(path):
        yield from db_records(path)
        return
    for file in log_files(path):
        for number, item in json_lines(file):
            yield file, number, item


def has_prompt(item: Mapping[str, Any]) -> bool:
    return isinstance(item.get("prompt"), str) or bool(item.get("messages"))


def prompt_of(item: Mapping[str, Any], where: str) -> str:
    if isinstance(item.get("prompt"), str):
        return str(item["prompt"])
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: record has no 'messages' and no 'prompt'")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _text((users or messages)[-1], where)


def _text(message: Any, where: str) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content
                         if isinstance(p, dict) and p.get("type") == "text")
    raise DataError(f"{where}: message content is neither text nor content parts")


def _messages(item: Mapping[str, Any], where: str) -> tuple[Message, ...]:
    raw = item.get("messages")
    if not isinstance(raw, list) or not raw:
        return (Message("user", prompt_of(item, where)),)
    return tuple(Message(str(m.get("role", "user")), _text(m, where)) for m in raw
                 if isinstance(m, dict))


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise DataError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def _labels(item: Mapping[str, Any], where: str) -> dict[str, float]:
    label = item.get("quality")
    if isinstance(label, Mapping):
        return {str(k): _unit(_number(v, where, f"quality[{k!r}]"), where)
                for k, v in label.items()}
    model = item.get("model")
    if not isinstance(model, str) or not model:
        raise DataError(f"{where}: a numeric quality label needs the answering 'model'")
    return {model: _unit(_number(label, where, "quality"), where)}


def _unit(value: float, where: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise DataError(f"{where}: quality {value} is outside [0, 1]")
    return value


def load_log(path: str | Path) -> OutcomeTable:
    """The labelled records of a request log as an outcome table (see module docstring)."""
    quality: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cost: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    skipped = unprompted = 0
    for file, number, item in records(path):
        where = f"{file}: line {number}"
        if item.get("quality") is None or item.get("outcome", "ok") != "ok":
            skipped += 1
            continue
        if not has_prompt(item) and "prompt_hash" in item:
            unprompted += 1
            continue
        prompt = prompt_of(item, where)
        for model, value in _labels(item, where).items():
            quality[prompt][model].append(value)
        if isinstance(item.get("model"), str) and item.get("cost_usd") is not None:
            cost[prompt][item["model"]].append(_number(item["cost_usd"], where, "cost_usd"))
    if not quality:
        more = f"; {unprompted} labelled {NO_PROMPT}" if unprompted else ""
        raise DataError(f"{path}: no record carries a quality label and its prompt{more}")
    extra = (f"skipped {unprompted} labelled {NO_PROMPT}",) if unprompted else ()
    return _table(quality, cost, skipped, str(path), extra)


def _table(quality: Mapping[str, Mapping[str, list[float]]],
           cost: Mapping[str, Mapping[str, list[float]]], skipped: int,
           source: str, extra: tuple[str, ...] = ()) -> OutcomeTable:
    prompts = tuple(quality)
    models = tuple(sorted({m for row in quality.values() for m in row}))
    q = np.full((len(prompts), len(models)), np.nan)
    c = np.full_like(q, np.nan)
    for i, prompt in enumerate(prompts):
        for j, model in enumerate(models):
            if quality[prompt].get(model):
                q[i, j] = float(np.mean(quality[prompt][model]))
            if cost.get(prompt, {}).get(model):
                c[i, j] = float(np.mean(cost[prompt][model]))
    notes: tuple[str, ...] = (
        "records with the same prompt merged; ungraded models are unknown (nan)",)
    if skipped:
        notes += (f"skipped {skipped} records without a quality label or not ok",)
    notes += extra
    return OutcomeTable(prompts, models, q, c, (), source=source, notes=notes)


def logged_requests(path: str | Path) -> list[LoggedRequest]:
    """Every ``ok`` record as a request to replay (for shadow evaluation)."""
    out: list[LoggedRequest] = []
    unprompted = 0
    for file, number, item in records(path):
        where = f"{file}: line {number}"
        if item.get("outcome", "ok") != "ok":
            continue
        if not has_prompt(item) and "prompt_hash" in item:
            unprompted += 1
            continue
        raw = item.get("decision")
        decision: dict[str, Any] = raw if isinstance(raw, dict) else {}
        estimated = decision.get("estimated_cost_usd", item.get("cost_usd", 0.0))
        out.append(LoggedRequest(
            request=RouteRequest(messages=_messages(item, where)),
            model=item.get("model") if isinstance(item.get("model"), str) else None,
            estimated_cost_usd=_number(estimated, where, "decision.estimated_cost_usd"),
            cost_usd=_number(item.get("cost_usd", 0.0), where, "cost_usd"),
        ))
    if not out:
        more = f" with its prompt ({unprompted} {NO_PROMPT})" if unprompted else ""
        raise DataError(f"{path}: the request log holds no successful request{more}")
    return out
