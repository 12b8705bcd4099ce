"""Configuration: strict pydantic models (unknown keys refused) and the loader.

Two phases, as in TensorZero: the raw models below validate what the file says;
:func:`resolve` turns them into runtime objects (catalog, rule set) and checks
cross-references (unknown model names, rules that can never match).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from pointsman.affinity import AffinityConfig
from pointsman.aliases import AliasConfig, PassthroughConfig
from pointsman.budget.config import BudgetsConfig
from pointsman.config_errors import format_validation_error
from pointsman.errors import ConfigError
from pointsman.experiments.config import ExperimentConfig
from pointsman.gateway.config import GatewayConfig
from pointsman.judging.config import JudgingConfig
from pointsman.latency.config import LatencyConfig
from pointsman.learned.cascade_config import CascadeConfig
from pointsman.learned.semantic_config import SemanticRoutesConfig
from pointsman.providers.config import ProvidersConfig
from pointsman.redis_config import RedisConfig
from pointsman.shares.config import TargetsConfig
from pointsman.telemetry.config import TelemetryConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogConfig(Strict):
    include_default: bool = True
    prices_as_of: str | None = None
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Weights(Strict):
    quality: float = Field(default=0.6, ge=0)
    cost: float = Field(default=0.3, ge=0)
    latency: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.quality + self.cost + self.latency <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class OutputTokens(Strict):
    default: int = Field(default=350, gt=0)
    by_task: dict[str, int] = Field(default_factory=dict)


class RouterConfig(Strict):
    """How ``model: auto`` is routed."""

    scorer: str = "heuristic"
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["weighted", "threshold"] = "weighted"
    candidates: list[str] = Field(min_length=1)
    strong_model: str | None = None
    weak_model: str | None = None
    threshold: float = Field(default=0.5, ge=0, le=1)
    weights: Weights = Weights()
    fit_scale: float = Field(default=25.0, gt=0)
    max_fallbacks: int = Field(default=3, ge=0)
    output_tokens: OutputTokens = OutputTokens()
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    targets: TargetsConfig | None = Field(default=None, description=(
        "Tier-share targets: live score thresholds that keep each tier's share of auto "
        "traffic at most its target (pointsman.shares)."))

    @model_validator(mode="after")
    def _threshold_models(self) -> RouterConfig:
        if self.mode == "threshold" and not (self.strong_model and self.weak_model):
            raise ValueError("mode 'threshold' needs strong_model and weak_model")
        return self


class KeywordGroup(Strict):
    weight: float
    task_type: str
    keywords: list[str] = Field(min_length=1)


class LengthConfig(Strict):
    weight: float = 7.0
    reference_tokens: int = Field(default=60, gt=0)
    max_points: float = 22.0


class StructureConfig(Strict):
    code_block: float = 10.0
    list_item: float = 1.5
    list_max: float = 6.0
    extra_question: float = 3.0
    question_max: float = 9.0
    constraint: float = 2.5
    constraint_max: float = 7.5
    turn: float = 1.5
    turn_max: float = 7.5
    constraint_words: list[str] = Field(
        default_factory=lambda: ["must", "should", "without", "at least", "at most", "exactly",
                                 "ensure", "constraint", "only use", "do not"]
    )


class HeuristicConfig(Strict):
    base: float = 22.0
    saturation: float = Field(default=0.45, gt=0, lt=1)
    groups: dict[str, KeywordGroup]
    length: LengthConfig = LengthConfig()
    structure: StructureConfig = StructureConfig()


class RuleWhen(Strict):
    task_type: list[str] | None = None
    plan: list[str] | None = None
    metadata: dict[str, str | int | float | bool] | None = None
    min_input_tokens: int | None = Field(default=None, ge=0)
    max_input_tokens: int | None = Field(default=None, ge=0)
    input_exceeds_context_of: str | None = None
    min_tools: int | None = Field(default=None, ge=1)
    realtime: bool | None = None
    min_complexity: float | None = Field(default=None, ge=0, le=100)
    max_complexity: float | None = Field(default=None, ge=0, le=100)
    # what agents send (scenario rules): thinking asked for (Anthropic ``thinking``, or a
    # reasoning effort), the effort, tool names present (shell patterns), the door, the
    # client (User-Agent patterns), the model name asked for (patterns), a small request
    # (its max output tokens at most this)
    thinking: bool | None = None
    reasoning_effort: list[str] | None = None
    tools_any: list[str] | None = None
    door: list[Literal["chat", "messages", "responses"]] | None = None
    client: list[str] | None = None
    requested_model: list[str] | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)


class RuleThen(Strict):
    model: str | None = None
    tier: str | None = None
    require: list[str] = Field(default_factory=list)
    prefer: Literal["score", "cheapest", "best", "longest_context"] = "score"

    @model_validator(mode="after")
    def _one_target(self) -> RuleThen:
        if self.model and self.tier:
            raise ValueError("give either model or tier, not both")
        if not (self.model or self.tier or self.require or self.prefer != "score"):
            raise ValueError("a rule must pin a model, a tier, a capability or a preference")
        return self


class RuleConfig(Strict):
    name: str = Field(min_length=1)
    when: RuleWhen = RuleWhen()
    then: RuleThen


class PointsmanConfig(Strict):
    """The whole configuration file."""

    catalog: CatalogConfig = CatalogConfig()
    router: RouterConfig
    heuristic: HeuristicConfig
    rules: list[RuleConfig] = Field(default_factory=list)
    task_keywords: dict[str, list[str]] = Field(default_factory=dict)
    budgets: BudgetsConfig = BudgetsConfig()
    semantic_routes: SemanticRoutesConfig = SemanticRoutesConfig()
    cascade: CascadeConfig = CascadeConfig()
    gateway: GatewayConfig = GatewayConfig()
    aliases: list[AliasConfig] = Field(default_factory=list,
                                       description="Model names routed like auto among some "
                                                   "candidates (pointsman.aliases).")
    passthrough: list[PassthroughConfig] = Field(default_factory=list,
                                                 description="Unknown names of a family sent to "
                                                             "an endpoint at assumed prices.")
    affinity: AffinityConfig = Field(default=AffinityConfig(),
                                     description="Session affinity (pointsman.affinity).")
    latency: LatencyConfig = LatencyConfig()
    providers: ProvidersConfig = ProvidersConfig()
    redis: RedisConfig = RedisConfig()  # shared by every Redis store (pointsman.redis_config)
    experiments: list[ExperimentConfig] = Field(default_factory=list,
                                                description="Online experiments between router "
                                                            "settings (pointsman.experiments).")
    telemetry: TelemetryConfig = TelemetryConfig()  # OTLP trace export (pointsman.telemetry)
    judging: JudgingConfig = JudgingConfig()
    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """Where this config came from (a file path or ``<built-in default config>``)."""
        return self._source


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


@cache
def _default_config() -> dict[str, Any]:
    text = resources.files("pointsman").joinpath("data/default_config.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def default_config_data() -> dict[str, Any]:
    """The built-in default config as a mapping: a copy of its own each call, so a caller
    that edits it (a test, a tool) never changes what every later load sees."""
    return copy.deepcopy(_default_config())


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Sections the user gives replace or extend the built-in default config.

    Mappings merge key by key (so a user may change one weight); lists and scalars replace.
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> PointsmanConfig:
    """Validate a mapping (already merged with defaults) into a :class:`PointsmanConfig`."""
    try:
        config = PointsmanConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, PointsmanConfig)) from None
    config._source = source
    return config


# Config keys that name files: a relative value given in a config file is relative to that
# file's folder (as in docker-compose or nginx), so a config works from any directory.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("router", "scorer_options", "artifact"),
    ("gateway", "keys_db"),
    ("gateway", "request_log", "sqlite_path"),
    ("budgets", "sqlite_path"),
    ("cascade", "learned", "artifact"),
)


def relative_to_file(data: dict[str, Any], file: Path) -> dict[str, Any]:
    """``data`` with each relative path under :data:`PATH_KEYS` joined to ``file``'s folder."""
    base = file.expanduser().absolute().parent
    for keys in PATH_KEYS:
        parent: Any = data
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        value = parent.get(keys[-1]) if isinstance(parent, dict) else None
        if isinstance(value, str) and value and value != ":memory:":
            target = Path(value).expanduser()
            parent[keys[-1]] = str(target if target.is_absolute() else base / target)
    return data


def load_config(path: str | Path | None = None, *, extend_default: bool = True) -> PointsmanConfig:
    """Load a config file (YAML or TOML) over the built-in default, or the default alone."""
    if path is None:
        return parse_config(default_config_data(), "<built-in default config>")
    file = Path(path)
    user = relative_to_file(_read_mapping(file), file)
    data = _merge(default_config_data(), user) if extend_default else user
    return parse_config(data, str(file))
