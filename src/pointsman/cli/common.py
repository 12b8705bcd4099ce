"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import InputError
from pointsman.jsonio import tidy_floats

MAX_PROMPT_BYTES = 8 * 1024 * 1024


def read_prompt(prompt: str | None) -> str:
    """The prompt from the argument, or from standard input when absent or ``-``."""
    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no prompt: give it as an argument or on standard input")
        data = sys.stdin.buffer.read(MAX_PROMPT_BYTES + 1)
        if len(data) > MAX_PROMPT_BYTES:
            raise InputError(f"prompt on standard input exceeds {MAX_PROMPT_BYTES} bytes")
        try:
            prompt = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"standard input is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start})") from None
    if not prompt.strip():
        raise InputError("the prompt is empty")
    return prompt


def config_from_option(path: Path | None) -> PointsmanConfig:
    return load_config(path)


def parse_metadata(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values that parse as JSON (numbers, true/false) are typed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--meta expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(tidy_floats(data), indent=2, sort_keys=False) + "\n")
