"""Registries: strategies and other pluggable parts are found by name.

A scorer registers a factory ``(config, options, call_model) -> ComplexityScorer``;
``call_model`` is the :class:`~pointsman.learned.model_call.CallModel` service through
which a scorer that asks a model asks it (the gateway's goes through its executor), or
None where the caller has none to give (the scorer then calls the model directly or
refuses). Built-in scorers register when their module is imported by
:func:`load_builtins`; third-party packages register through the ``pointsman.plugins``
entry-point group, whose entry points name a callable ``register(scorers, learners)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pointsman.errors import ConfigError
from pointsman.suggest import did_you_mean

if TYPE_CHECKING:
    from pointsman.config import PointsmanConfig
    from pointsman.learned.model_call import CallModel
    from pointsman.learning import Learner
    from pointsman.signals.base import ComplexityScorer

T = TypeVar("T")

ScorerFactory = Callable[["PointsmanConfig", Mapping[str, Any], "CallModel | None"],
                         "ComplexityScorer"]
# A learner factory takes its options (for example ``{"k": 20}``) and returns an unfitted
# learner for the evaluation lab and ``pointsman train``.
LearnerFactory = Callable[[Mapping[str, Any]], "Learner"]

# Modules that register built-in parts when imported. A new built-in adds its module here.
BUILTIN_MODULES: list[str] = ["pointsman.signals.builtin", "pointsman.learned.register"]


class Registry(Generic[T]):
    """A name → factory map with helpful errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, replace: bool = False) -> None:
        if name in self._items and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def get(self, name: str) -> T:
        load_builtins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            hint = did_you_mean(name, self._items)
            raise ConfigError(f"unknown {self.kind} {name!r}{hint}; known: {known}") from None

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._items


scorers: Registry[ScorerFactory] = Registry("scorer")
learners: Registry[LearnerFactory] = Registry("learner")

_loaded = False


def load_builtins() -> None:
    """Import the built-in modules and plugin entry points once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        import_module(module)
    for entry in entry_points(group="pointsman.plugins"):
        register = entry.load()
        register(scorers, learners)


def create_scorer(config: PointsmanConfig, name: str | None = None,
                  options: Mapping[str, Any] | None = None,
                  call_model: CallModel | None = None) -> ComplexityScorer:
    """Build the named scorer (the config's by default) with its options and the model
    call service (see the module docstring)."""
    chosen = name or config.router.scorer
    opts = config.router.scorer_options if options is None else options
    return scorers.get(chosen)(config, opts, call_model)
