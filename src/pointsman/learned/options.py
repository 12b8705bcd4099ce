"""Reading learner and scorer options (from config or ``--router-option k=v``) strictly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointsman.errors import ConfigError


class Options:
    """Typed access to an options mapping; unknown keys and wrong types are config errors."""

    def __init__(self, owner: str, options: Mapping[str, Any], known: set[str]) -> None:
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"{owner}: unknown options {unknown}; known: {sorted(known)}")
        self.owner = owner
        self.raw = dict(options)

    def string(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.owner}: option {key!r} must be a non-empty string, "
                              f"got {value!r}")
        return value

    def optional_string(self, key: str) -> str | None:
        if self.raw.get(key) is None:
            return None
        return self.string(key, "")

    def number(self, key: str, default: float, *, low: float | None = None,
               high: float | None = None) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, str):
            value = _parse_number(self.owner, key, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.owner}: option {key!r} must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{self.owner}: option {key!r} must be in "
                              f"[{low}, {high}], got {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int = 1) -> int:
        value = self.number(key, default, low=low)
        if value != int(value):
            raise ConfigError(f"{self.owner}: option {key!r} must be an integer, got {value!r}")
        return int(value)

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in allowed:
            raise ConfigError(f"{self.owner}: option {key!r} must be one of {list(allowed)}, "
                              f"got {value!r}")
        return value

    def mapping(self, key: str) -> dict[str, str]:
        value = self.raw.get(key) or {}
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{self.owner}: option {key!r} must map names to names, "
                              f"got {value!r}")
        return dict(value)


def _parse_number(owner: str, key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{owner}: option {key!r} must be a number, got {text!r}") from None
