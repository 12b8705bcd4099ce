"""Everything the gateway builds once at start-up, and the per-request steps around it:
live state → decision (``auto``, explicit, or a virtual ``router-<scorer>-<threshold>``),
and the request log record of each accepted request."""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pointsman.affinity import AffinitySource, build_affinity, session_key
from pointsman.aliases import MAX_PASSTHROUGH_NAMES, Alias, AliasTable, PassthroughConfig
from pointsman.budget.cost import Cost, baseline_cost, nano_usd
from pointsman.budget.spend import Scope, SpendSummary
from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError, InputError, PointsmanError, UnknownModelError
from pointsman.executor import DeploymentSource, Executor
from pointsman.gateway.auth import KeyRing, Principal
from pointsman.gateway.cascade import (
    build_cascade,
    cascade_names,
    cascade_threshold,
)
from pointsman.gateway.config import HealthConfig
from pointsman.gateway.drain import Drain
from pointsman.gateway.metrics import Metrics
from pointsman.gateway.parse import ChatRequest
from pointsman.health import CooldownSource, HealthRecorder, HealthStore, MemoryHealth
from pointsman.latency.wiring import build_latency
from pointsman.learned.model_call import executor_calls
from pointsman.redis_config import RedisConfig
from pointsman.registry import create_scorer, scorers
from pointsman.requestlog import Outcome, RequestLog, RequestRecord
from pointsman.router import Router, resolve_catalog
from pointsman.shares.source import ScoreQuantiles, build_shares
from pointsman.signals.base import AsyncComplexityScorer, ComplexityScorer
from pointsman.state import AttemptOutcome, BudgetGuard, OutcomeRecorder, StateSource
from pointsman.stores.labels import LabelStore
from pointsman.stores.responses import ResponseStore
from pointsman.types import Decision, LiveState, RouteRequest

if TYPE_CHECKING:
    from pointsman.experiments.service import ArmMetrics, Experiments
    from pointsman.gateway.reload import Lasting
    from pointsman.judging.service import Judging
    from pointsman.learned.cascade import QualityCascade
    from pointsman.telemetry.tracing import Telemetry

log = logging.getLogger("pointsman.gateway")
VIRTUAL_PREFIX = "router-"
MAX_VIRTUAL_ROUTERS = 64


class MetricsRecorder:
    """Counts failed upstream attempts by model and error code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        if not outcome.ok:
            self.metrics.attempts.labels(outcome.model, outcome.error_code or "error").inc()


class Gateway:
    def __init__(self, config: PointsmanConfig, deployments: DeploymentSource, *,
                 executor: Executor | None = None, health: HealthStore | None = None,
                 guard: BudgetGuard | None = None,
                 sources: Sequence[StateSource] = (),
                 recorders: Sequence[OutcomeRecorder] = (),
                 telemetry: Telemetry | None = None,
                 lasting: Lasting | None = None) -> None:
        self.config = config
        self.catalog = resolve_catalog(config)
        gcfg = config.gateway
        self.keys = KeyRing(gcfg.keys, gcfg.keys_db, gcfg.keys_db_reload_s)
        self.metrics = lasting.metrics if lasting is not None else Metrics()
        self.telemetry = telemetry  # None: no span, nothing done per request
        if telemetry is not None:
            recorders = [*recorders, telemetry.recorder]
        self.health = health or build_health(config.gateway.health, config.redis)
        self.deployments = deployments
        by_model = {m: [d.name for d in deployments.deployments(m)] for m in self.catalog.models}
        # auto routes only among models it can call; the decision lists the others as
        # filtered out ("no deployment is configured")
        self.base_state = LiveState(undeployed=frozenset(m for m, d in by_model.items() if not d))
        self.cooldown = CooldownSource(self.health, by_model)
        self.latency = (lasting.latency if lasting is not None and lasting.latency is not None
                        else build_latency(config.latency, by_model, health=self.health,
                                           tiers={m.name: m.tier for m in self.catalog},
                                           redis=config.redis))
        self.sources: list[StateSource] = [self.cooldown, self.latency.source, *sources]
        self.affinity = (lasting.affinity if lasting is not None and lasting.reuse_affinity
                         else build_affinity(config.affinity))
        if self.affinity is not None:
            self.sources.append(AffinitySource(self.affinity))
        if guard is not None and isinstance(guard, StateSource):
            self.sources.append(guard)
        self.shares = (build_shares(config.router.targets, config.redis)
                       if config.router.targets is not None else None)
        if self.shares is not None:  # tier-share targets: the live thresholds
            self.sources.append(self.shares)
        self.executor = executor or Executor(
            self.catalog, deployments, health=self.health, guard=guard,
            retry=config.gateway.retry, chooser=self.latency.chooser,
            recorders=[HealthRecorder(self.health), self.latency.recorder,
                       MetricsRecorder(self.metrics), *recorders])
        self.guard = guard
        # what scorers and judges that ask a model are handed: calls through the executor
        self.call_model = executor_calls(self.executor)
        self.router = Router(config, self._scorer(config))
        self.candidate_names = frozenset(s.name for s in self.router.candidates)
        self.log: RequestLog | None = None
        self.drain = lasting.drain if lasting is not None else Drain(config.gateway.drain_timeout_s)
        self.responses: ResponseStore | None = None  # the Responses door's stored answers
        self.labels: LabelStore | None = None  # feedback and judged labels (POST /v1/feedback)
        self.judging: Judging | None = None  # judged samples (set by create_app)
        # record ids: a random 64-bit prefix per process and a counter (os.urandom per
        # record is a system call on every request)
        self._id_prefix = lasting.id_prefix if lasting is not None else secrets.token_hex(8)
        self._ids = lasting.ids if lasting is not None else itertools.count()
        self._virtual: dict[str, Router] = {}
        self.aliases = AliasTable(config.aliases, config.passthrough, self.catalog,
                                  self.router.candidates, list(config.providers.endpoints))
        self._adopted: set[str] = set()
        self._notes: dict[str, str] = {}  # passthrough name → what its decisions say
        self._async_scorer = isinstance(self.router.scorer, AsyncComplexityScorer)
        self.cascade = build_cascade(config.cascade, self.call_model, self.executor,
                                     self.catalog)
        self.cascade_thresholds: dict[tuple[int, float], QualityCascade] = {}
        self._arm_metrics: ArmMetrics | None = None
        self.experiments = self._experiments(config, self.router)

    # -- routing ------------------------------------------------------------------------
    async def decide(self, chat: ChatRequest) -> Decision:
        state = self.base_state
        for source in self.sources:
            state = await source.contribute(chat.route, state)
        router, explicit, alias = self._router_for(chat.model)
        arm = None
        if self.experiments is not None and router is self.router and explicit is None:
            arm = self.experiments.assign(chat.route)
            router = router if arm is None else arm.router
        note = self._notes.get(explicit, "") if explicit is not None else ""
        scorer = router.scorer
        signal = None
        if explicit is None and (router is not self.router or self._async_scorer) \
                and isinstance(scorer, AsyncComplexityScorer):
            signal = await scorer.ascore(chat.route)  # I/O scorers: awaited, then passed in
        decision = router.decide(chat.route, state, model=explicit, signal=signal, alias=alias,
                                 note=note)
        if self.shares is not None and explicit is None:  # the window of auto's scores
            self.shares.add(decision.scores["complexity"] / 100.0)
        if arm is not None and self.experiments is not None:
            decision = self.experiments.decided(arm, decision)
        self.metrics.decision(decision)
        return decision

    def _scorer(self, config: PointsmanConfig) -> ComplexityScorer:
        """The config's scorer, handed the gateway's model call service."""
        return create_scorer(config, call_model=self.call_model)

    def _experiments(self, config: PointsmanConfig, base: Router) -> Experiments | None:
        if not config.experiments:
            return None
        from pointsman.experiments.service import ArmMetrics, Experiments

        if self._arm_metrics is None:
            self._arm_metrics = ArmMetrics(self.metrics.registry)
        return Experiments(config, config.experiments,
                           lambda cfg: Router(cfg, self._scorer(cfg)), base,
                           self._arm_metrics)

    def reload_router(self, config: PointsmanConfig) -> None:
        """Swap in the ``router`` and ``experiments`` sections of a new config (a new
        threshold, a retrained artifact, new arms) without a restart: everything is built
        first, then swapped in one step between two requests (the hook a config reload,
        such as SIGHUP, calls). A config that does not build raises and changes nothing."""
        router = Router(config, self._scorer(config))
        experiments = self._experiments(config, router) if config.experiments else None
        if experiments is not None and self.experiments is not None:
            experiments.carry_over(self.experiments)
        self.config = self.config.model_copy(update={"router": config.router,
                                                     "experiments": config.experiments})
        self.router, self.experiments = router, experiments
        if self.shares is not None and config.router.targets is not None:
            self.shares.retarget(config.router.targets)
        self.candidate_names = frozenset(s.name for s in router.candidates)
        self._async_scorer = isinstance(router.scorer, AsyncComplexityScorer)
        self._virtual.clear()

    def keep_shares(self, old: ScoreQuantiles | None) -> ScoreQuantiles | None:
        """A reload: keep the old gateway's score window when its store and size are the
        same (new shares apply to it); returns the part this gateway no longer needs."""
        new = self.shares
        if old is None or old is new:
            return None
        if new is None:
            return old
        same = (old.cfg.model_copy(update={"shares": {}}) ==
                new.cfg.model_copy(update={"shares": {}}))
        if not same:
            return old
        old.retarget(new.cfg)
        self.sources[self.sources.index(new)] = self.shares = old
        return new

    def _router_for(self, model: str, via_alias: bool = False
                    ) -> tuple[Router, str | None, Alias | None]:
        """(the router, the explicit model or None, the alias the name matched)."""
        if model == "auto":
            return self.router, None, None
        if model in self.catalog:
            return self.router, model, None
        if self.cascade is not None and cascade_threshold(model, self.config.cascade) is not None:
            return self.router, None, None
        if model.startswith(VIRTUAL_PREFIX):
            return self._virtual_router(model), None, None
        found = None if via_alias else self.aliases.lookup(model)
        if isinstance(found, Alias):
            if found.route == "auto":
                return self.router, None, found
            router, explicit, _ = self._router_for(found.route, via_alias=True)
            return router, explicit, found
        if found is not None:
            return self.router, self._adopt(model, found), None
        raise UnknownModelError(
            f"unknown model {model!r}: use \"auto\", a catalog model (GET /v1/models), "
            f"{VIRTUAL_PREFIX}<scorer>-<threshold>, or configure an alias or passthrough "
            "for it", param="model")

    def _adopt(self, model: str, family: PassthroughConfig) -> str:
        """Serve a passthrough name as asked, at its family's assumed prices."""
        if len(self._adopted) >= MAX_PASSTHROUGH_NAMES:
            raise InputError(f"model {model!r}: too many distinct passthrough names in use",
                             "model")
        spec = self.aliases.passthrough_spec(model, family)
        self.catalog.adopt(spec)
        self.router.catalog.adopt(spec)  # the router resolved a catalog of its own
        adopt = getattr(self.deployments, "adopt", None)
        if adopt is not None:
            adopt(spec)
        self._adopted.add(model)
        self._notes[model] = (f"unknown model {model!r} passed through to endpoint "
                              f"{family.endpoint} at the assumed prices of {family.price_as}")
        log.info("passthrough: %s served by endpoint %s at the prices of %s (assumed)",
                 model, family.endpoint, family.price_as)
        return model

    def _virtual_router(self, name: str) -> Router:
        router = self._virtual.get(name)
        if router is not None:
            return router
        scorer_name, _, raw = name[len(VIRTUAL_PREFIX):].rpartition("-")
        try:
            threshold = float(raw)
        except ValueError:
            threshold = -1.0
        if not scorer_name or not 0.0 <= threshold <= 1.0:
            raise InputError(f"virtual model {name!r}: expected {VIRTUAL_PREFIX}<scorer>-"
                             "<threshold> with a threshold in [0, 1]", "model")
        rc = self.config.router
        if not (rc.strong_model and rc.weak_model):
            raise InputError(f"virtual model {name!r} needs router.strong_model and "
                             "router.weak_model in the gateway's config", "model")
        if scorer_name not in scorers:
            raise InputError(f"virtual model {name!r}: unknown scorer {scorer_name!r}; "
                             f"known: {', '.join(scorers.names())}", "model")
        options = rc.scorer_options if scorer_name == rc.scorer else {}
        cfg = self.config.model_copy(update={"router": rc.model_copy(update={
            "mode": "threshold", "threshold": threshold, "scorer": scorer_name,
            "scorer_options": options})})
        try:
            router = Router(cfg, self._scorer(cfg))
        except ConfigError as exc:
            raise InputError(f"virtual model {name!r}: {exc.message}", "model") from None
        if len(self._virtual) >= MAX_VIRTUAL_ROUTERS:
            self._virtual.pop(next(iter(self._virtual)))
        self._virtual[name] = router
        return router

    def cascade_models(self) -> list[str]:
        return cascade_names(self.config.cascade)

    def virtual_models(self) -> list[str]:
        rc = self.config.router
        if not (rc.strong_model and rc.weak_model):
            return []
        return [f"{VIRTUAL_PREFIX}{name}-{rc.threshold:g}" for name in scorers.names()]

    # -- request log --------------------------------------------------------------------
    async def remember(self, chat: ChatRequest, model: str, prompt_tokens: int,
                       response_id: str | None = None) -> None:
        """The model that answered a conversation's turn, for the next turn's affinity
        (also under the Responses door's response id, which the next turn names as its
        ``previous_response_id``)."""
        if self.affinity is None:
            return
        keys = [session_key(chat.route), session_key(chat.route, response_id)]
        try:
            for key in dict.fromkeys(k for k in keys if k is not None):
                await self.affinity.put(key, model, prompt_tokens)
        except PointsmanError as exc:  # affinity is an optimisation: say so and go on
            log.warning("session affinity not recorded: %s", exc.message)

    def new_request_id(self) -> str:
        """A request's id (``x-pointsman-request-id`` and the log record's id)."""
        return f"{self._id_prefix}{next(self._ids):016x}"

    def cascade_threshold(self, model: str) -> float | None:
        """The cascade threshold a model name asks for, or None (no cascade)."""
        if self.cascade is None:
            return None
        return cascade_threshold(model, self.config.cascade)

    async def write_record(self, request_id: str, door: str, chat: ChatRequest,
                           principal: Principal, decision: Decision | None, *,
                           outcome: Outcome, models_tried: Sequence[str], model: str | None,
                           error: PointsmanError | None, cost: Cost, ttft_ms: float | None,
                           total_ms: float) -> None:
        """Queue the request's record (see :meth:`Exchange.record`, its one caller);
        ``cost`` is the answer's, to which the routing call's
        (``decision.routing_cost_usd``) is added: the record says what the request cost in
        all, as the budgets charged it."""
        if self.log is None:
            return
        meta = chat.route.metadata
        messages: list[dict[str, Any]] = (
            list(chat.body.get("messages") or []) if self.config.gateway.request_log.log_messages
            else [])
        prompt, completion = cost.prompt_tokens, cost.completion_tokens
        record = RequestRecord(
            id=request_id, ts=time.time(), key=principal.name, user=_str(meta, "user"),
            team=_str(meta, "team"), session=_str(meta, "session"), requested_model=chat.model,
            decision=decision.to_dict() if decision is not None else {},
            models_tried=list(models_tried), outcome=outcome,
            error=f"{error.code}: {error.message}" if error is not None else None, model=model,
            prompt_tokens=prompt, completion_tokens=completion,
            cost_usd=nano_usd(cost.usd + (decision.routing_cost_usd if decision is not None
                                          else 0.0)),
            baseline_cost_usd=baseline_cost(self.router.candidates, prompt, completion,
                                            cost.cached_tokens, cost.cache_creation_tokens),
            ttft_ms=ttft_ms, total_ms=total_ms, stream=chat.stream, messages=messages,
            door=door, cached_tokens=cost.cached_tokens,
            cache_creation_tokens=cost.cache_creation_tokens,
            reasoning_tokens=cost.reasoning_tokens, prompt_hash=prompt_hash(chat.route),
            experiment=decision.experiment if decision is not None else None,
            arm=decision.arm if decision is not None else None)
        if self.experiments is not None:
            self.experiments.finished(decision, record.cost_usd)
        try:
            await self.log.write(record)
        except PointsmanError as exc:  # closed during shutdown: say so, do not fail the answer
            log.error("request log: record %s not written: %s", record.id, exc.message)

    async def spend_summary(self, scope: Scope | None, subject: str | None, since: float,
                            until: float, top: int = 5) -> SpendSummary:
        """``SpendQueries`` over the request log opened at start-up."""
        queries = getattr(self.log, "spend_summary", None)
        if queries is None:
            return SpendSummary(0, 0.0, 0.0, ())
        result: SpendSummary = await queries(scope, subject, since, until, top)
        return result


def prompt_hash(route: RouteRequest) -> str:
    """What joins a record whose prompt is not logged with the prompt kept elsewhere."""
    return hashlib.sha256(route.last_user_text.encode()).hexdigest()


def build_health(cfg: HealthConfig, redis: RedisConfig | None = None) -> HealthStore:
    """``gateway.health.store``: this process's memory (a file shared with the other
    workers of ``serve --workers N``), or Redis shared by replicas (the top-level
    ``redis`` section, ``gateway.health.redis_*`` overriding it)."""
    if cfg.store == "memory":
        from pointsman.gateway.workers import run_dir

        shared_dir = run_dir()  # one of several workers: share the breakers with the others
        if shared_dir is None:
            return MemoryHealth(cfg)
        from pointsman.health_local import SharedFileHealth

        return SharedFileHealth(shared_dir / "health.db", cfg, cache_s=cfg.cache_s)
    from pointsman.health_redis import RedisHealth

    shared = (redis or RedisConfig()).for_store(
        "health:", url=cfg.redis_url, prefix=cfg.redis_prefix,
        socket_timeout_s=cfg.socket_timeout_s)
    return RedisHealth(shared, cfg, cache_s=cfg.cache_s)


def _str(meta: Any, name: str) -> str | None:
    value = meta.get(name)
    return None if value is None else str(value)
