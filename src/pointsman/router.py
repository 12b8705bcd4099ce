"""The routing core: a request and a live-state snapshot in, a :class:`Decision` out.

Pure: no I/O, no clock, no global state. The gateway, the CLI and the evaluation lab
all call :meth:`Router.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from operator import attrgetter
from typing import NamedTuple

from pointsman.affinity import keep_or_move
from pointsman.aliases import Alias
from pointsman.budget.config import PlanConfig
from pointsman.budget.plans import (
    budget_exclusion,
    budget_note,
    downgrade_steps,
    named_plan,
    usd,
)
from pointsman.catalog import Catalog, build_catalog
from pointsman.config import PointsmanConfig
from pointsman.errors import (
    BudgetExceededError,
    ConfigError,
    NoCandidateError,
    NoDeploymentError,
    NoHealthyCandidateError,
    PointsmanError,
)
from pointsman.latency.targets import latency_gate
from pointsman.policies.weighted import score_candidates
from pointsman.registry import create_scorer
from pointsman.rules import CompiledRule, Features, compile_rules
from pointsman.shares.cap import cap
from pointsman.signals.base import ComplexityScorer, Signal
from pointsman.tokens import estimate_message_tokens
from pointsman.types import (
    NO_DEPLOYMENT,
    CandidateScore,
    Decision,
    LiveState,
    ModelSpec,
    RouteRequest,
    SessionView,
)

_EMPTY = LiveState()
COOLING = "cooling down after repeated failures"


class _Context(NamedTuple):
    """Per-request facts shared by the steps of one decision (a NamedTuple: cheap to build)."""

    request: RouteRequest
    state: LiveState
    signal: Signal
    task_type: str
    input_tokens: int
    output_tokens: int
    plan: tuple[str, PlanConfig] | None
    capabilities: frozenset[str]


# the strongest candidate (the cost baseline): best quality, then dearest, then name
_baseline_key = attrgetter("quality", "output_price", "name")


def _noted(decision: Decision, note: str) -> Decision:
    return replace(decision, reason=f"{note}; {decision.reason}")


def resolve_catalog(config: PointsmanConfig) -> Catalog:
    try:
        return build_catalog(config.catalog.models, config.catalog.include_default,
                             config.catalog.prices_as_of)
    except ValueError as exc:
        raise ConfigError(f"catalog.models: {exc}") from None


def _resolve_names(names: Sequence[str], catalog: Catalog, where: str) -> tuple[ModelSpec, ...]:
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise ConfigError(f"{where}: unknown models {unknown}; known: {sorted(catalog.models)}")
    return tuple(catalog.get(n) for n in dict.fromkeys(names))


class Router:
    """Turns requests into decisions for one resolved config."""

    def __init__(self, config: PointsmanConfig, scorer: ComplexityScorer | None = None) -> None:
        try:
            self._resolve(config, scorer)
        except ConfigError as exc:
            if exc.message.startswith(config.source):
                raise
            raise ConfigError(f"{config.source}: {exc.message}") from None

    def _resolve(self, config: PointsmanConfig, scorer: ComplexityScorer | None) -> None:
        self.config = config
        self.catalog = resolve_catalog(config)
        rc = config.router
        self.candidates = _resolve_names(rc.candidates, self.catalog, "router.candidates")
        for model, chain in rc.fallbacks.items():
            _resolve_names([model, *chain], self.catalog, f"router.fallbacks.{model}")
        for field in ("strong_model", "weak_model"):
            name = getattr(rc, field)
            if name is not None and name not in {c.name for c in self.candidates}:
                raise ConfigError(f"router.{field}: {name!r} is not one of router.candidates")
        task_types = {g.task_type for g in config.heuristic.groups.values()} | {"general"}
        task_types |= set(config.router.output_tokens.by_task) | set(config.task_keywords)
        self.rules: tuple[CompiledRule, ...] = compile_rules(
            config.rules, self.catalog, self.candidates, task_types)
        self.scorer = scorer or create_scorer(config)
        self.strategy = f"{self.scorer.name}/{rc.mode}"

    # -- public -------------------------------------------------------------------------
    def decide(self, request: RouteRequest, state: LiveState = _EMPTY, *,
               model: str | None = None, signal: Signal | None = None,
               alias: Alias | None = None, note: str = "") -> Decision:
        """Route ``request``; with ``model`` the caller's explicit choice is honoured.

        ``signal`` is a complexity signal computed beforehand, for scorers that need I/O
        (an LLM-as-router is awaited by the gateway, then its signal passed in here).
        ``alias``: the requested name was an alias (:mod:`pointsman.aliases`): routed among
        its candidates, by its preference, and said in the reason; ``note`` is said there too.
        """
        ctx = self._context(request, state, signal)
        if alias is not None:
            note = alias.note if not note else f"{alias.note}; {note}"
        if model is not None:
            decision = self._explicit(ctx, self.catalog.get(model))
        else:
            decision = self._routed(ctx, self.candidates if alias is None else alias.candidates,
                                    alias.prefer if alias is not None else "score")
        return _noted(decision, note) if note else decision

    def _routed(self, ctx: _Context, candidates: Sequence[ModelSpec], prefer: str) -> Decision:
        request, state = ctx.request, ctx.state
        eligible, filtered = self._eligible(candidates, ctx)
        if not eligible:
            raise self._no_candidate(filtered, state)
        gate = latency_gate(eligible, request, state, self.config.latency)
        eligible, state = gate.eligible, gate.state
        filtered.update(gate.filtered)
        ranked = score_candidates(eligible, ctx.signal.score, ctx.input_tokens,
                                  ctx.output_tokens, self.config.router.weights,
                                  self.config.router.fit_scale, state)
        if gate.forced is not None:  # no candidate meets the latency target: the fastest
            chosen, rule, reason = gate.forced, None, gate.note
        elif prefer != "score":
            chosen, rule = self._prefer(prefer, eligible, ranked), None
            reason = f"preferring {prefer} among {len(eligible)} candidates{gate.note}"
        else:
            chosen, rule, reason = self._choose(ctx, eligible, ranked)
            reason += gate.note
        if state.session is not None and gate.forced is None:
            chosen, reason = self._affinity(ctx, state.session, chosen,
                                            self._rule_pool(rule, eligible, chosen), reason)
        threshold = None
        if state.tier_thresholds and gate.forced is None and prefer == "score" and (
                rule is None or rule.startswith("route:")):  # config rules are not capped
            chosen, threshold, why = cap(chosen, eligible, ranked, ctx.signal.score / 100.0,
                                         state.tier_thresholds)
            reason = f"{reason}; {why}" if why else reason
        if state.budget is not None:  # without a budget position there is no budget note
            plan = ctx.plan[1] if ctx.plan is not None else None
            reason += budget_note(state.budget, filtered,
                                  downgrade_steps(self.config.budgets, plan))
        return self._decision(ctx, chosen, eligible, ranked, filtered, rule, reason, threshold)

    def _rule_pool(self, rule: str | None, eligible: list[ModelSpec], chosen: ModelSpec
                   ) -> list[ModelSpec]:
        """The models affinity may keep a conversation on: those with the capabilities the
        decision's rule requires (the rule's model or tier is a preference that the
        conversation's cache may outweigh); a semantic route's choice stands."""
        if rule is None:
            return eligible
        compiled = next((r for r in self.rules if r.name == rule), None)
        if compiled is None:
            return [chosen]
        need = compiled.config.then.require
        return [s for s in eligible if all(cap in s.capabilities for cap in need)]

    def _affinity(self, ctx: _Context, view: SessionView, chosen: ModelSpec,
                  eligible: list[ModelSpec], reason: str) -> tuple[ModelSpec, str]:
        """Keep the conversation on its previous model unless moving saves more than its
        prompt cache is worth (:func:`pointsman.affinity.keep_or_move`)."""
        previous = next((s for s in eligible if s.name == view.model), None)
        if previous is None or previous.name == chosen.name:
            return chosen, reason
        # the typical output of this kind of request, not the cap an agent sends (Claude
        # Code asks max_tokens 32000 for every turn): the comparison must not be all output
        out = self.config.router.output_tokens
        expected = min(ctx.output_tokens, out.by_task.get(ctx.task_type, out.default))
        kept, why = keep_or_move(previous, chosen, view, ctx.input_tokens, expected,
                                 self.config.affinity.allow_upgrade)
        return kept, f"{reason}; {why}"

    # -- steps --------------------------------------------------------------------------
    def _context(self, request: RouteRequest, state: LiveState,
                 signal: Signal | None) -> _Context:
        signal = signal or self.scorer.score(request)
        task_type = str(request.metadata.get("task_type") or signal.task_type or "general")
        out = self.config.router.output_tokens
        output_tokens = request.max_output_tokens or out.by_task.get(task_type, out.default)
        return _Context(request, state, signal, task_type,
                        estimate_message_tokens(request.messages), output_tokens,
                        named_plan(self.config.budgets, request.metadata),
                        request.required_capabilities)

    def _exclusion(self, spec: ModelSpec, ctx: _Context) -> str | None:
        if ctx.capabilities and not ctx.capabilities <= spec.capabilities:
            return f"lacks {', '.join(sorted(ctx.capabilities - spec.capabilities))}"
        needed = ctx.input_tokens + ctx.output_tokens
        if needed > spec.context_window:
            return (f"needs {needed} tokens (input {ctx.input_tokens} + output "
                    f"{ctx.output_tokens}) > context window {spec.context_window}")
        if spec.name in ctx.state.undeployed:
            return NO_DEPLOYMENT
        if spec.name in ctx.state.cooling_down:
            return COOLING
        if ctx.plan is None and ctx.state.budget is None:  # nothing more can rule it out
            return None
        return budget_exclusion(self.config.budgets, ctx.plan, spec,
                                spec.cost(ctx.input_tokens, ctx.output_tokens), ctx.state.budget)

    def _eligible(self, specs: Sequence[ModelSpec], ctx: _Context
                  ) -> tuple[list[ModelSpec], dict[str, str]]:
        eligible: list[ModelSpec] = []
        filtered: dict[str, str] = {}
        for spec in specs:
            why = self._exclusion(spec, ctx)
            if why is None:
                eligible.append(spec)
            else:
                filtered[spec.name] = why
        return eligible, filtered

    def _no_candidate(self, filtered: dict[str, str], state: LiveState) -> PointsmanError:
        budget = state.budget
        message = self._no_candidate_message(filtered)
        if budget is not None and any(budget.name in why for why in filtered.values()):
            return BudgetExceededError(
                f"budget {budget.name} cannot cover this request: ${budget.spent_usd:.4f} of "
                f"{usd(budget.limit_usd)} spent; resets at {budget.resets_at} ({message})",
                budget.name, budget.resets_at, self.config.budgets.exceeded_status)
        if filtered and all(why == NO_DEPLOYMENT for why in filtered.values()):
            return NoDeploymentError(
                f"no candidate model has a deployment to call ({', '.join(filtered)}): set "
                "the API keys of their providers' endpoints, or configure "
                "providers.deployments")
        if filtered and all(why in (NO_DEPLOYMENT, COOLING) for why in filtered.values()):
            return NoHealthyCandidateError(f"every candidate model is cooling down after "
                                           f"failures upstream; retry shortly ({message})")
        return NoCandidateError(message)

    @staticmethod
    def _no_candidate_message(filtered: dict[str, str]) -> str:
        reasons = "; ".join(f"{name}: {why}" for name, why in filtered.items())
        return f"no candidate model can serve this request ({reasons})"

    def _choose(self, ctx: _Context, eligible: list[ModelSpec], ranked: list[CandidateScore]
                ) -> tuple[ModelSpec, str | None, str]:
        features = Features(ctx.input_tokens, ctx.request.tools_count, ctx.task_type,
                            ctx.signal.score, ctx.request.metadata,
                            ctx.request.max_output_tokens)
        for rule in self.rules:
            if not rule.matches(features):
                continue
            pool = [s for s in eligible if rule.targets(s)]
            if pool:
                chosen = self._prefer(rule.config.then.prefer, pool, ranked)
                return chosen, rule.name, f"rule {rule.name!r} matched; {self._prefer_text(rule)}"
        target = ctx.signal.target
        if target is not None:
            order = {c.model: i for i, c in enumerate(ranked)}
            pool = [s for s in eligible if s.name == target.model or s.tier == target.tier]
            if pool:
                chosen = min(pool, key=lambda s: order[s.name])
                return (chosen, f"route:{target.name}",
                        f"route {target.name!r} chose {target.model or 'tier ' + str(target.tier)}"
                        f"{'; ' + target.detail if target.detail else ''}")
        return self._by_mode(ctx, eligible, ranked)

    def _by_mode(self, ctx: _Context, eligible: list[ModelSpec], ranked: list[CandidateScore]
                 ) -> tuple[ModelSpec, str | None, str]:
        rc = self.config.router
        complexity = ctx.signal.score
        if rc.mode == "threshold" and rc.strong_model and rc.weak_model:
            # a tier-share target of the strong model's tier moves the threshold
            live = ctx.state.tier_thresholds.get(self.catalog.get(rc.strong_model).tier)
            threshold = rc.threshold if live is None else live
            strong = complexity / 100.0 >= threshold
            target = rc.strong_model if strong else rc.weak_model
            names = {s.name for s in eligible}
            if target in names:
                side = ">=" if strong else "<"
                where = "" if live is None else " (tier-share target)"
                return (self.catalog.get(target), None,
                        f"score {complexity / 100:.3f} {side} threshold {threshold:.4g}"
                        f"{where}: {'strong' if strong else 'weak'} model")
        best = ranked[0]
        return (self.catalog.get(best.model), None,
                f"complexity {complexity:.1f} ({ctx.task_type}); best weighted score "
                f"{best.total:.3f} (fit {best.fit:.2f}, cost {best.cost:.2f}, "
                f"latency {best.latency:.2f})")

    @staticmethod
    def _prefer(prefer: str, pool: list[ModelSpec], ranked: list[CandidateScore]) -> ModelSpec:
        if prefer == "cheapest":
            costs = {c.model: c.estimated_cost_usd for c in ranked}
            return min(pool, key=lambda s: (costs[s.name], -s.quality, s.name))
        if prefer == "best":
            return max(pool, key=lambda s: (s.quality, -s.input_price, s.name))
        if prefer == "longest_context":
            return max(pool, key=lambda s: (s.context_window, s.quality, s.name))
        order = {c.model: i for i, c in enumerate(ranked)}
        return min(pool, key=lambda s: order[s.name])

    @staticmethod
    def _prefer_text(rule: CompiledRule) -> str:
        then = rule.config.then
        target = (f"model {then.model}" if then.model else
                  f"tier {then.tier}" if then.tier else "any candidate")
        needs = f" with {', '.join(then.require)}" if then.require else ""
        return f"{target}{needs}, preferring {then.prefer}"

    def _explicit(self, ctx: _Context, spec: ModelSpec) -> Decision:
        chain = self.config.router.fallbacks.get(spec.name)
        pool = [self.catalog.get(n) for n in chain] if chain is not None else [
            s for s in self.candidates if s.tier == spec.tier and s.name != spec.name]
        eligible, filtered = self._eligible([spec, *pool], ctx)
        ranked = score_candidates(eligible or [spec], ctx.signal.score, ctx.input_tokens,
                                  ctx.output_tokens, self.config.router.weights,
                                  self.config.router.fit_scale, ctx.state)
        if chain is not None:  # a configured chain keeps its order
            order = {name: i for i, name in enumerate(chain)}
            ranked.sort(key=lambda c: order.get(c.model, -1))
        return self._decision(ctx, spec, eligible or [spec], ranked, filtered, None,
                              f"model {spec.name!r} requested explicitly")

    def _decision(self, ctx: _Context, chosen: ModelSpec, eligible: list[ModelSpec],
                  ranked: list[CandidateScore], filtered: dict[str, str], rule: str | None,
                  reason: str, threshold: float | None = None) -> Decision:
        fallbacks = tuple([c.model for c in ranked if c.model != chosen.name])
        baseline = max(eligible, key=_baseline_key)
        signal = ctx.signal
        scores: dict[str, float] = {"complexity": round(signal.score, 2)}
        for c in ranked:
            scores[c.model] = c.total  # rounded by Decision.to_dict
        return Decision(
            model=chosen.name,
            fallbacks=fallbacks[: self.config.router.max_fallbacks],
            scores=scores,
            reason=reason,
            estimated_cost_usd=chosen.cost(ctx.input_tokens, ctx.output_tokens),
            baseline_model=baseline.name,
            baseline_cost_usd=baseline.cost(ctx.input_tokens, ctx.output_tokens),
            input_tokens=ctx.input_tokens,
            output_tokens=ctx.output_tokens,
            strategy=self.strategy,
            rule=rule,
            signals=dict(signal.signals),
            task_type=ctx.task_type,
            candidates=tuple(ranked),
            filtered_out=filtered,
            stage=signal.stage,
            routing_cost_usd=signal.cost_usd,
            threshold=threshold,
        )
