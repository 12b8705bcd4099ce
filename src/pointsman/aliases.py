"""Model names that are not catalog models: aliases and passthrough families.

Coding agents ask for fixed model names (Claude Code ``claude-opus-5-5`` and, for its
background calls, ``claude-haiku-*``; Codex ``gpt-6.2-sol`` or ``gpt-5.5-codex``). Two config
sections make such names route instead of failing:

``aliases`` (first match wins; patterns are shell-style, case-sensitive)::

    aliases:
      - match: ["claude-opus-*", "claude-sonnet-*"]   # the names it covers
        route: auto            # auto: routed among the candidates below (default)
        min_tier: mid          # only candidates of tier >= mid (local < cheap < mid < premium)
      - match: "claude-haiku-*"   # Claude Code's background calls
        max_tier: cheap
        prefer: cheapest
      - match: "gpt-5*-codex"
        route: gpt-4.1         # or a catalog model, router-<scorer>-<t>, cascade-<t>

An alias with ``route: auto`` routes like ``auto`` (rules, budgets, latency, affinity)
among ``candidates`` (default: ``router.candidates``) filtered by ``min_tier`` / ``max_tier``;
``prefer`` picks among them by ``score`` (the router's choice), ``cheapest`` or ``best``.
A key allowed an alias name (or a pattern covering it) may be answered by its candidates.

``passthrough`` (for names no alias covers)::

    passthrough:
      - match: "claude-*"
        endpoint: anthropic          # the endpoint that serves such names, as asked
        price_as: claude-sonnet-4-5  # the catalog model whose prices (and tier) are assumed

A passthrough name is sent to that endpoint unchanged and costed at the assumed prices; the
decision's reason says so (``x-pointsman-reason``, the request log).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pointsman.catalog import Catalog
from pointsman.errors import ConfigError
from pointsman.types import TIERS, ModelSpec

log = logging.getLogger("pointsman.router")
Prefer = Literal["score", "cheapest", "best"]
MAX_PASSTHROUGH_NAMES = 256  # distinct unknown names adopted per process (hostile callers)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _patterns(value: object) -> object:
    return [value] if isinstance(value, str) else value


class AliasConfig(_Strict):
    match: list[str] = Field(min_length=1)
    route: str = "auto"
    candidates: list[str] | None = None
    min_tier: str | None = None
    max_tier: str | None = None
    prefer: Prefer = "score"

    _one_or_many = field_validator("match", mode="before")(_patterns)


class PassthroughConfig(_Strict):
    match: list[str] = Field(min_length=1)
    endpoint: str = Field(min_length=1)
    price_as: str = Field(min_length=1)

    _one_or_many = field_validator("match", mode="before")(_patterns)


@dataclass(frozen=True, slots=True)
class Alias:
    """A resolved alias: the route's name, and for ``auto`` its candidates and preference."""

    pattern: str
    route: str
    candidates: tuple[ModelSpec, ...]
    prefer: Prefer

    @property
    def note(self) -> str:
        return f"alias {self.pattern!r} -> {self.route}"


def _tier_ok(spec: ModelSpec, low: str | None, high: str | None) -> bool:
    rank = TIERS.index(spec.tier)
    return ((low is None or rank >= TIERS.index(low))
            and (high is None or rank <= TIERS.index(high)))


def _within_tiers(pool: list[ModelSpec], low: str | None, high: str | None
                  ) -> list[ModelSpec]:
    """The candidates within the tier limits; when none is, the nearest tier's (an alias
    asking for tier >= mid among cheap candidates gets the dearest of them, not an error:
    the built-in aliases must fit any candidate list)."""
    within = [s for s in pool if _tier_ok(s, low, high)]
    if within or not pool:
        return within
    rank = [TIERS.index(s.tier) for s in pool]
    nearest = max(rank) if low is not None else min(rank)
    return [s for s, r in zip(pool, rank, strict=True) if r == nearest]


def resolve_alias(cfg: AliasConfig, where: str, catalog: Catalog,
                  candidates: Sequence[ModelSpec]) -> Alias:
    for field in ("min_tier", "max_tier"):
        tier = getattr(cfg, field)
        if tier is not None and tier not in TIERS:
            raise ConfigError(f"{where}.{field}: unknown tier {tier!r}; expected {list(TIERS)}")
    pool = list(candidates)
    if cfg.candidates is not None:
        known = [catalog.get(n) for n in cfg.candidates if n in catalog]
        if known:
            pool = known  # names a catalog lacks are skipped (the built-in aliases name
        else:             # default models, which a catalog of one's own may not have)
            log.warning("%s.candidates: none of %s is in the catalog: routing among "
                        "router.candidates", where, cfg.candidates)
    pool = _within_tiers(pool, cfg.min_tier, cfg.max_tier)
    if cfg.route != "auto" and cfg.route not in catalog and not cfg.route.startswith("router-"):
        raise ConfigError(f"{where}.route: {cfg.route!r} is none of auto, a catalog model or "
                          "router-<scorer>-<threshold>")
    if cfg.route != "auto" and cfg.route in catalog:
        pool = [catalog.get(cfg.route)]
    return Alias(", ".join(cfg.match), cfg.route, tuple(pool), cfg.prefer)


class AliasTable:
    """The aliases and passthrough families of one config, looked up by requested name
    (results cached per name: one dict hit per request after the first)."""

    def __init__(self, aliases: Sequence[AliasConfig], passthrough: Sequence[PassthroughConfig],
                 catalog: Catalog, candidates: Sequence[ModelSpec],
                 endpoints: Sequence[str]) -> None:
        self._aliases = [(cfg.match, resolve_alias(cfg, f"aliases[{i}]", catalog, candidates))
                         for i, cfg in enumerate(aliases)]
        for i, pt in enumerate(passthrough):
            if pt.endpoint not in endpoints:
                raise ConfigError(f"passthrough[{i}].endpoint: unknown endpoint "
                                  f"{pt.endpoint!r}; known: {sorted(endpoints)}")
            if pt.price_as not in catalog:
                raise ConfigError(f"passthrough[{i}].price_as: unknown model {pt.price_as!r}")
        self._passthrough = list(passthrough)
        self._catalog = catalog
        self._seen: dict[str, Alias | PassthroughConfig | None] = {}

    def lookup(self, name: str) -> Alias | PassthroughConfig | None:
        """The alias or passthrough family a name that is no catalog model falls under."""
        if name in self._seen:
            return self._seen[name]
        result: Alias | PassthroughConfig | None = None
        for patterns, alias in self._aliases:
            if any(fnmatchcase(name, p) for p in patterns):
                result = alias
                break
        else:
            result = next((pt for pt in self._passthrough
                           if any(fnmatchcase(name, p) for p in pt.match)), None)
        if len(self._seen) < 4096:
            self._seen[name] = result
        return result

    def passthrough_spec(self, name: str, family: PassthroughConfig) -> ModelSpec:
        """The catalog entry a passthrough name is served as: the assumed model's prices,
        tier and capabilities, the family's endpoint, the name itself upstream."""
        assumed = self._catalog.get(family.price_as)
        return replace(assumed, name=name, provider=family.endpoint, upstream_model=name)
