"""Outcome-data loaders: benchmark files in, an :class:`~pointsman.learning.OutcomeTable` out.

Formats (``load_table(path, format)``):

``routellm``
    RouteLLM's response CSVs: a ``prompt`` column and one boolean column per model
    (``True``/``False``, also ``1``/``0``), one file per subject; optional
    ``<model>_response`` columns hold each model's answer text (as in RouteLLM's GSM8K
    outcomes), loaded as the table's ``answers`` for cascade replay. ``path`` is one CSV or a
    folder searched recursively for ``*.csv`` (files in name order). A
    ``contaminated_prompts.jsonl`` (one JSON object per line with ``eval_prompt``) in the
    given folder, beside the CSVs or one level above them is honoured: those prompts are
    dropped, as RouteLLM does. ``groups`` is the subject taken from the file name
    (``mmlu_anatomy.csv`` → ``anatomy``).

``routerbench``
    RouterBench CSVs: per model a score column in [0, 1], ``<model>|model_response`` and
    ``<model>|total_cost`` (US dollars); the responses (a Python list literal of strings, or
    plain text) are the table's ``answers``. ``path`` is a CSV, a folder (all ``*.csv``) or a
    glob. Every file must list the same models. An empty score or cost cell is ``nan``:
    unknown, not a failure (see :mod:`pointsman.evaluation.pareto` for how the metrics
    treat it). ``groups`` is the ``eval_name`` column when present, else the file stem.

``log``
    pointsman's request log as JSON Lines (see :mod:`pointsman.evaluation.logs`).

Every problem is a :class:`~pointsman.errors.DataError` naming the file.
"""

from __future__ import annotations

import ast
import csv
import glob
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pointsman.errors import DataError
from pointsman.evaluation.logs import json_lines
from pointsman.learning import OutcomeTable

FORMATS: tuple[str, ...] = ("routellm", "routerbench", "log")
CONTAMINATED = "contaminated_prompts.jsonl"
_TRUE = {"true": 1.0, "1": 1.0, "1.0": 1.0, "false": 0.0, "0": 0.0, "0.0": 0.0}
_RB_META = {"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}

csv.field_size_limit(sys.maxsize)


def load_table(path: str | Path, format: str) -> OutcomeTable:
    """Load outcome data of the given format."""
    if format == "routellm":
        return load_routellm(path)
    if format == "routerbench":
        return load_routerbench(path)
    if format == "log":
        from pointsman.evaluation.logs import load_log

        return load_log(path)
    raise DataError(f"unknown data format {format!r}; expected one of {list(FORMATS)}")


# -- shared helpers --------------------------------------------------------------------
def csv_files(path: str | Path) -> list[Path]:
    """The CSV files named by ``path``: a file, a folder (recursive) or a glob pattern."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
        if not files:
            raise DataError(f"{text}: no file matches this pattern")
        return files
    where = Path(path).expanduser()
    if where.is_dir():
        files = sorted(where.rglob("*.csv"))
        if not files:
            raise DataError(f"{where}: folder holds no .csv file")
        return files
    if not where.exists():
        raise DataError(f"{where}: data file or folder not found")
    return [where]


def _rows(file: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one CSV; ragged rows are refused."""
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            table = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{file}: cannot read CSV ({exc})") from None
    if not table:
        raise DataError(f"{file}: file is empty (no header row)")
    header, rows = table[0], table[1:]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{file}: row {number} has {len(row)} cells, header has "
                            f"{len(header)}")
    return header, rows


# -- RouteLLM --------------------------------------------------------------------------
def load_routellm(path: str | Path) -> OutcomeTable:
    """RouteLLM response CSVs (see the module docstring)."""
    files = csv_files(path)
    contaminated, source = _contaminated(Path(path), files)
    prompts: list[str] = []
    groups: list[str] = []
    blocks: list[np.ndarray] = []
    texts: list[np.ndarray | None] = []
    models: tuple[str, ...] = ()
    total = 0
    for file in files:
        header, rows = _rows(file)
        total += len(rows)
        if "prompt" not in header:
            raise DataError(f"{file}: no 'prompt' column (columns: {header})")
        cols = tuple(h for h in header if h not in ("prompt", "")
                     and not _is_response(h, header))
        if len(cols) < 2:
            raise DataError(f"{file}: needs at least two model columns, found {list(cols)}")
        if models and cols != models:
            raise DataError(f"{file}: model columns {list(cols)} differ from {list(models)}")
        models = cols
        kept = [r for r in rows if r[header.index("prompt")] not in contaminated]
        prompts += [r[header.index("prompt")] for r in kept]
        groups += [_subject(file)] * len(kept)
        blocks.append(_booleans(file, header, kept, cols))
        texts.append(_answers(header, kept, cols, "_response"))
    quality = np.vstack(blocks) if blocks else np.zeros((0, len(models)))
    dropped = total - len(prompts)
    notes = (f"dropped {dropped} contaminated prompts listed in {source}",) if source else ()
    return OutcomeTable(tuple(prompts), models, quality, None, tuple(groups),
                        source=str(path), notes=notes, answers=_stack(texts))


def _is_response(column: str, header: Sequence[str]) -> bool:
    return column.endswith("_response") and column.removesuffix("_response") in header


def _answers(header: list[str], rows: list[list[str]], cols: Sequence[str],
             suffix: str) -> np.ndarray | None:
    """Each model's answer text (``""`` where empty), or ``None`` when no column has one."""
    index = [header.index(c + suffix) if c + suffix in header else None for c in cols]
    if all(k is None for k in index):
        return None
    out = np.full((len(rows), len(cols)), "", dtype=object)
    for i, row in enumerate(rows):
        for j, k in enumerate(index):
            if k is not None:
                out[i, j] = _answer_text(row[k])
    return out


def _answer_text(cell: str) -> str:
    """RouterBench stores a response as a list literal (``['C']``); plain text stays."""
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    return text


def _stack(blocks: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """The files' answers stacked; ``None`` unless every file has answer columns."""
    if not blocks or any(b is None for b in blocks):
        return None
    return np.vstack([b for b in blocks if b is not None])


def _booleans(file: Path, header: list[str], rows: list[list[str]],
              cols: Sequence[str]) -> np.ndarray:
    index = [header.index(c) for c in cols]
    out = np.empty((len(rows), len(cols)))
    for i, row in enumerate(rows):
        for j, k in enumerate(index):
            value = _TRUE.get(row[k].strip().lower())
            if value is None:
                raise DataError(f"{file}: row {i + 2}, column {cols[j]!r}: expected True or "
                                f"False, got {row[k]!r}")
            out[i, j] = value
    return out


def _subject(file: Path) -> str:
    stem = file.stem
    return stem.split("_", 1)[1] if "_" in stem else stem


def _contaminated(path: Path, files: Sequence[Path]) -> tuple[set[str], Path | None]:
    places = [path] if path.is_dir() else []
    for file in files:
        places += [file.parent, file.parent.parent]
    for place in dict.fromkeys(places):
        candidate = place / CONTAMINATED
        if candidate.is_file():
            return _read_contaminated(candidate), candidate
    return set(), None


def _read_contaminated(file: Path) -> set[str]:
    out: set[str] = set()
    for number, item in json_lines(file):
        if not isinstance(item.get("eval_prompt"), str):
            raise DataError(f"{file}: line {number} has no string 'eval_prompt'")
        out.add(item["eval_prompt"])
    return out


# -- RouterBench -----------------------------------------------------------------------
def load_routerbench(path: str | Path) -> OutcomeTable:
    """RouterBench CSVs (see the module docstring)."""
    files = csv_files(path)
    prompts: list[str] = []
    groups: list[str] = []
    quality: list[np.ndarray] = []
    cost: list[np.ndarray] = []
    texts: list[np.ndarray | None] = []
    models: tuple[str, ...] = ()
    for file in files:
        header, rows = _rows(file)
        found = _rb_models(file, header)
        if models and set(found) != set(models):
            raise DataError(f"{file}: models {sorted(found)} differ from {sorted(models)}")
        models = models or found
        p_at = header.index("prompt")
        g_at = header.index("eval_name") if "eval_name" in header else None
        prompts += [r[p_at] for r in rows]
        groups += [r[g_at] if g_at is not None else file.stem for r in rows]
        quality.append(_numbers(file, header, rows, models, ""))
        cost.append(_numbers(file, header, rows, models, "|total_cost"))
        texts.append(_answers(header, rows, models, "|model_response"))
    q = np.vstack(quality)
    c = np.vstack(cost)
    notes = (f"{int(np.isnan(q).any(axis=1).sum())} prompts have a missing score for at least "
             f"one model (unknown, not a failure)",)
    return OutcomeTable(tuple(prompts), models, q, c, tuple(groups), source=str(path),
                        notes=notes, answers=_stack(texts))


def _rb_models(file: Path, header: list[str]) -> tuple[str, ...]:
    if "prompt" not in header:
        raise DataError(f"{file}: no 'prompt' column; is this a RouterBench CSV?")
    models = tuple(h for h in header if h not in _RB_META and "|" not in h)
    if not models:
        raise DataError(f"{file}: no model score columns found")
    missing = [f"{m}|total_cost" for m in models if f"{m}|total_cost" not in header]
    if missing:
        raise DataError(f"{file}: missing cost columns {missing}")
    return models


def _numbers(file: Path, header: list[str], rows: list[list[str]], models: Sequence[str],
             suffix: str) -> np.ndarray:
    index = [header.index(m + suffix) for m in models]
    out = np.empty((len(rows), len(models)))
    for i, row in enumerate(rows):
        for j, k in enumerate(index):
            out[i, j] = _number(file, i + 2, models[j] + suffix, row[k])
    return out


def _number(file: Path, row: int, column: str, cell: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{file}: row {row}, column {column!r}: not a number: {cell!r}") from None
    if value < 0 or math.isinf(value):
        raise DataError(f"{file}: row {row}, column {column!r}: invalid value {cell!r}")
    return value
