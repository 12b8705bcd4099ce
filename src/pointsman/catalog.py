"""The model catalog: prices, context windows, capabilities, quality priors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pointsman.errors import ConfigError, UnknownModelError
from pointsman.types import TIERS, ModelSpec

CapabilityName = str
KNOWN_CAPABILITIES = frozenset({"streaming", "tools", "json_mode", "vision", "batch"})


class ModelEntry(BaseModel):
    """A catalog entry as written in YAML; every field may be overridden by config.
    ``cache_read_price`` / ``cache_write_price``: US$ per million prompt-cache reads /
    writes (left out: billed at ``input_price``)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    input_price: float = Field(ge=0)
    output_price: float = Field(ge=0)
    context_window: int = Field(gt=0)
    capabilities: list[str] = Field(default_factory=lambda: ["streaming"])
    tier: str = "mid"
    quality: float = Field(ge=0, le=100)
    latency_ms: float = Field(default=3000, gt=0)
    ttft_ms: float = Field(default=500, gt=0)
    upstream_model: str = ""
    max_output_tokens: int = Field(default=16_384, gt=0)
    cache_read_price: float | None = Field(default=None, ge=0)
    cache_write_price: float | None = Field(default=None, ge=0)

    def model_post_init(self, __context: Any) -> None:
        unknown = set(self.capabilities) - KNOWN_CAPABILITIES
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)}; expected some of "
                f"{sorted(KNOWN_CAPABILITIES)}"
            )
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; expected one of {list(TIERS)}")

    def to_spec(self, name: str) -> ModelSpec:
        return ModelSpec(
            name=name,
            provider=self.provider,
            input_price=self.input_price,
            output_price=self.output_price,
            context_window=self.context_window,
            capabilities=frozenset(self.capabilities),
            tier=self.tier,
            quality=self.quality,
            latency_ms=self.latency_ms,
            ttft_ms=self.ttft_ms,
            upstream_model=self.upstream_model,
            max_output_tokens=self.max_output_tokens,
            cache_read_price=self.cache_read_price,
            cache_write_price=self.cache_write_price,
        )


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices_as_of: str
    models: dict[str, ModelEntry]


@dataclass(frozen=True)
class Catalog:
    """An immutable name → :class:`ModelSpec` mapping with the date of its prices."""

    models: Mapping[str, ModelSpec]
    prices_as_of: str

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models.values())

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def __len__(self) -> int:
        return len(self.models)

    def adopt(self, spec: ModelSpec) -> None:
        """Add a model learned at run time (a passthrough name, see
        :mod:`pointsman.aliases`), for everything holding this catalog; the one mutation a
        catalog allows, and it never changes an existing entry."""
        models = self.models
        assert isinstance(models, dict)
        models.setdefault(spec.name, spec)

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModelError(
                f"unknown model {name!r}; known models: {', '.join(sorted(self.models))}",
                param="model",
            ) from None


@cache
def default_catalog_file() -> CatalogFile:
    text = resources.files("pointsman").joinpath("data/default_catalog.yaml").read_text("utf-8")
    try:
        return CatalogFile.model_validate(yaml.safe_load(text))
    except ValidationError as exc:  # a packaging bug, not a user error
        raise ConfigError(f"built-in catalog is invalid: {exc}") from exc


def build_catalog(
    overrides: Mapping[str, Mapping[str, Any]], include_default: bool = True,
    prices_as_of: str | None = None,
) -> Catalog:
    """The default catalog with config overrides merged field by field, or only the config's.

    Raises ``ValueError`` (wrapped by the config loader) for an invalid merged entry.
    """
    base = default_catalog_file()
    raw: dict[str, dict[str, Any]] = (
        {name: entry.model_dump() for name, entry in base.models.items()}
        if include_default
        else {}
    )
    for name, fields in overrides.items():
        raw[name] = {**raw.get(name, {}), **fields}
    specs = {name: _entry(name, fields).to_spec(name) for name, fields in raw.items()}
    return Catalog(models=specs, prices_as_of=prices_as_of or base.prices_as_of)


def _entry(name: str, fields: Mapping[str, Any]) -> ModelEntry:
    """One merged catalog entry, or a one-line ``ValueError`` naming the model and field."""
    from pointsman.config_errors import format_validation_error

    try:
        return ModelEntry.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(format_validation_error(name, exc, ModelEntry)) from None
