"""\"Did you mean\" hints for names a user mistyped (config keys, routers, models)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to ``name``, when one is near enough to be a typo."""
    matches = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else the empty string."""
    match = closest(name, known)
    return f" (did you mean {match!r}?)" if match else ""
