"""Test helpers shipped with pointsman: a local upstream that speaks the OpenAI Chat
Completions, Anthropic Messages and OpenAI Responses wire formats, with injectable
failures (:mod:`pointsman.testing.upstream`).

Imports are lazy so that ``python -m pointsman.testing.upstream`` runs the module once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pointsman.testing.stub_state import Behavior
    from pointsman.testing.upstream import UpstreamStub

__all__ = ["Behavior", "UpstreamStub"]
_HOMES = {"Behavior": "pointsman.testing.stub_state", "UpstreamStub": "pointsman.testing.upstream"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pointsman.testing' has no attribute {name!r}")
