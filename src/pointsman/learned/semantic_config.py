"""The ``semantic_routes:`` config section: named intent routes with example utterances."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SemanticRoute(_Strict):
    """One intent: example utterances, and the model or tier that serves it."""

    name: str = Field(min_length=1)
    utterances: list[str] = Field(min_length=1)
    negatives: list[str] = Field(default_factory=list)
    model: str | None = None
    tier: str | None = None
    threshold: float | None = Field(default=None, ge=-1, le=1)

    @model_validator(mode="after")
    def _one_target(self) -> SemanticRoute:
        if bool(self.model) == bool(self.tier):
            raise ValueError(f"route {self.name!r}: give exactly one of model or tier")
        if any(not u.strip() for u in self.utterances):
            raise ValueError(f"route {self.name!r}: utterances must not be empty")
        return self


class SemanticRoutesConfig(_Strict):
    """``encoder``: embedding spec; ``default_threshold``: used when a route cannot be fitted
    (a single utterance and no negatives) and gives no ``threshold`` of its own."""

    encoder: str = "minilm-static"
    default_threshold: float = Field(default=0.6, ge=-1, le=1)
    routes: list[SemanticRoute] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SemanticRoutesConfig:
        names = [r.name for r in self.routes]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"route names must be unique; repeated: {doubles}")
        return self
