"""One-line config error messages from pydantic's, with "did you mean" for unknown keys.

pydantic's own text spans several lines and ends with a URL; a CLI error is one line on
standard error, and a mistyped key is most often one letter away from a real one.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from pointsman.suggest import did_you_mean


def format_validation_error(source: str, exc: ValidationError,
                            root: type[BaseModel] | None = None, prefix: str = "") -> str:
    """``source: a.b.c: what is wrong (got ...)`` for each error, joined by ``; ``."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        where = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            known = _fields_at(root, err["loc"][:-1]) if root else []
            message = "unknown key" + did_you_mean(loc[-1], known)
        lines.append(f"{source}: {where}: {message}{_shown(err)}")
    return "; ".join(lines)


def _shown(err: Any) -> str:
    """The offending value, when it is a short scalar (never a whole section)."""
    if err["type"] in ("missing", "extra_forbidden"):
        return ""
    got = err.get("input")
    if isinstance(got, dict | list | tuple | set):
        return ""
    return f" (got {got!r:.60})"


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names of the model found at ``loc`` below ``model`` (empty if none)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return []
    current = _unwrap(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any, part: int | str | None) -> Any:
    """Step from ``annotation`` to what sits at ``part`` (a field, an item, a value)."""
    if part is None:
        return _strip_optional(annotation)
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return None if field is None else field.annotation
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in rest if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else rest[0]
    if origin is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation
