"""Declarative routing rules: compiled and checked at load time, matched in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, NamedTuple

from pointsman.catalog import KNOWN_CAPABILITIES, Catalog
from pointsman.config import RuleConfig
from pointsman.errors import ConfigError
from pointsman.types import TIERS, ModelSpec


class Features(NamedTuple):
    """What rules can match on, computed once per request (a NamedTuple: cheap to build)."""

    input_tokens: int
    tools_count: int
    task_type: str
    complexity: float
    metadata: Mapping[str, Any]
    max_output_tokens: int | None = None

    @property
    def plan(self) -> str | None:
        plan = self.metadata.get("plan")
        return str(plan) if plan is not None else None

    @property
    def realtime(self) -> bool:
        value = self.metadata.get("realtime", True)
        if isinstance(value, str):
            return value.strip().lower() not in ("false", "0", "no")
        return bool(value)


AGENT_FIELDS = ("thinking", "reasoning_effort", "tools_any", "door", "client",
                "requested_model", "max_output_tokens")


def _any_match(values: Any, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(str(v), p) for v in values for p in patterns)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    config: RuleConfig
    exceeds_tokens: int | None
    agent: bool = False  # has scenario conditions (checked only then)

    @property
    def name(self) -> str:
        return self.config.name

    def matches(self, f: Features) -> bool:
        w = self.config.when
        if w.task_type is not None and f.task_type not in w.task_type:
            return False
        if w.plan is not None and f.plan not in w.plan:
            return False
        if w.metadata is not None and any(
            str(f.metadata.get(k)) != str(v) for k, v in w.metadata.items()
        ):
            return False
        if w.min_input_tokens is not None and f.input_tokens < w.min_input_tokens:
            return False
        if w.max_input_tokens is not None and f.input_tokens > w.max_input_tokens:
            return False
        if self.exceeds_tokens is not None and f.input_tokens <= self.exceeds_tokens:
            return False
        if w.min_tools is not None and f.tools_count < w.min_tools:
            return False
        if w.realtime is not None and f.realtime != w.realtime:
            return False
        if w.min_complexity is not None and f.complexity < w.min_complexity:
            return False
        if w.max_complexity is not None and f.complexity > w.max_complexity:
            return False
        return self._agent_matches(f) if self.agent else True

    def _agent_matches(self, f: Features) -> bool:
        """The scenario conditions (what agents send), read from the request's metadata."""
        w, meta = self.config.when, f.metadata
        if w.thinking is not None and bool(meta.get("thinking")) != w.thinking:
            return False
        if w.reasoning_effort is not None and meta.get("reasoning_effort") not in \
                w.reasoning_effort:
            return False
        if w.door is not None and meta.get("door") not in w.door:
            return False
        if w.tools_any is not None and not _any_match(meta.get("tool_names") or (),
                                                      w.tools_any):
            return False
        if w.client is not None and not _any_match((str(meta.get("client") or ""),),
                                                   w.client):
            return False
        if w.requested_model is not None and not _any_match(
                (str(meta.get("requested_model") or ""),), w.requested_model):
            return False
        return not (w.max_output_tokens is not None and (
            f.max_output_tokens is None or f.max_output_tokens > w.max_output_tokens))

    def targets(self, spec: ModelSpec) -> bool:
        return rule_targets(self.config, spec)


def _is_unconditional(rule: RuleConfig) -> bool:
    return all(v is None for v in rule.when.model_dump().values())


def _check_rule(rule: RuleConfig, where: str, catalog: Catalog,
                candidates: Sequence[ModelSpec], task_types: set[str]) -> int | None:
    w, then = rule.when, rule.then
    names = {c.name for c in candidates}
    if then.model is not None and then.model not in names:
        problem = "is not a candidate" if then.model in catalog else "is not in the catalog"
        raise ConfigError(f"{where}.then.model: {then.model!r} {problem}")
    if then.tier is not None and then.tier not in TIERS:
        raise ConfigError(f"{where}.then.tier: unknown tier {then.tier!r}; expected {list(TIERS)}")
    bad_caps = set(then.require) - KNOWN_CAPABILITIES
    if bad_caps:
        raise ConfigError(f"{where}.then.require: unknown capabilities {sorted(bad_caps)}")
    if not any(rule_targets(rule, c) for c in candidates):
        raise ConfigError(f"{where}.then: no candidate model satisfies this target")
    if w.task_type is not None and (unknown := set(w.task_type) - task_types):
        raise ConfigError(f"{where}.when.task_type: unknown task types {sorted(unknown)}; "
                          f"known: {sorted(task_types)}")
    exceeds = None
    if w.input_exceeds_context_of is not None:
        exceeds = catalog.get(w.input_exceeds_context_of).context_window
    _check_ranges(rule, where, exceeds, candidates)
    return exceeds


def _check_ranges(rule: RuleConfig, where: str, exceeds: int | None,
                  candidates: Sequence[ModelSpec]) -> None:
    w = rule.when
    low = max(w.min_input_tokens or 0, (exceeds + 1) if exceeds is not None else 0)
    if w.max_input_tokens is not None and low > w.max_input_tokens:
        raise ConfigError(f"{where}.when: input tokens must exceed {low} and stay under "
                          f"{w.max_input_tokens}: this rule can never match")
    if (w.min_complexity is not None and w.max_complexity is not None
            and w.min_complexity > w.max_complexity):
        raise ConfigError(f"{where}.when: min_complexity > max_complexity: can never match")
    widest = max(c.context_window for c in candidates if rule_targets(rule, c))
    if low >= widest:
        raise ConfigError(f"{where}.when: matches inputs over {low} tokens but no target model "
                          f"has a context window over {widest}: this rule can never route")


def rule_targets(rule: RuleConfig, spec: ModelSpec) -> bool:
    then = rule.then
    return ((then.model is None or spec.name == then.model)
            and (then.tier is None or spec.tier == then.tier)
            and all(cap in spec.capabilities for cap in then.require))


def compile_rules(
    rules: Sequence[RuleConfig], catalog: Catalog, candidates: Sequence[ModelSpec],
    task_types: set[str],
) -> tuple[CompiledRule, ...]:
    """Check every rule against the catalog and candidates; refuse unreachable rules."""
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"rules[{index}] ({rule.name})"
        if rule.name in seen:
            raise ConfigError(f"{where}.name: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        if compiled and _is_unconditional(compiled[-1].config):
            raise ConfigError(f"{where}: comes after the unconditional rule "
                              f"{compiled[-1].name!r} and can never match")
        exceeds = _check_rule(rule, where, catalog, candidates, task_types)
        agent = any(getattr(rule.when, name) is not None for name in AGENT_FIELDS)
        compiled.append(CompiledRule(rule, exceeds, agent))
    return tuple(compiled)
