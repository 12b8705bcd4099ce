"""uvicorn options shared by ``pointsman serve`` and the benchmark's upstream stub."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Literal


def fast_loop() -> Literal["uvloop", "asyncio"]:
    """uvloop when installed (it is a dependency), else asyncio."""
    return "uvloop" if find_spec("uvloop") is not None else "asyncio"


def fast_http() -> Literal["httptools", "h11"]:
    """httptools when installed (it is a dependency), else h11."""
    return "httptools" if find_spec("httptools") is not None else "h11"
