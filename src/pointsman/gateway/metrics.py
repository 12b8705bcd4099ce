"""Prometheus metrics, in a registry of the app's own (several apps may share a process)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from pointsman.types import Decision

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
COST_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)


def reason_kind(decision: Decision) -> str:
    """A bounded label for a decision's reason (the full text is in the request log)."""
    if decision.rule:
        return f"rule:{decision.rule}"
    reason = decision.reason
    if reason.startswith("model "):
        return "explicit"
    if reason.startswith("score "):
        return "threshold:strong" if "strong" in reason else "threshold:weak"
    return "weighted"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pointsman_requests", "Requests by answering model, outcome "
                                "and door (chat, messages, responses).",
                                ["model", "outcome", "door"], registry=r)
        self.errors = Counter("pointsman_errors", "Errors returned, by code and door.",
                              ["code", "door"], registry=r)
        self.routed = Counter("pointsman_routing_decisions", "Routing decisions by chosen "
                              "model and reason.", ["model", "reason"], registry=r)
        self.tokens = Counter("pointsman_tokens", "Tokens by model and kind.",
                              ["model", "kind"], registry=r)
        self.cost = Counter("pointsman_cost_usd", "Actual cost in US dollars by model.",
                            ["model"], registry=r)
        self.routing_cost = Counter("pointsman_routing_cost_usd", "Cost of routing calls "
                                    "(an LLM-as-router) in US dollars, by routing strategy.",
                                    ["strategy"], registry=r)
        self.cost_hist = Histogram("pointsman_request_cost_usd", "Cost per request.",
                                   ["model"], buckets=COST_BUCKETS, registry=r)
        self.latency = Histogram("pointsman_request_latency_seconds", "Total request time.",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("pointsman_time_to_first_token_seconds", "Time to first token "
                              "of streams.", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self._per_model: dict[str, tuple[Any, ...]] = {}
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._routed: dict[tuple[str, str], Any] = {}
        self.attempts = Counter("pointsman_upstream_failures", "Failed upstream attempts.",
                                ["model", "code"], registry=r)
        self.cascade = Counter("pointsman_cascade_steps", "Quality-cascade steps by model and "
                               "result (passed, below, unjudged, failed).", ["model", "result"],
                               registry=r)

    def decision(self, decision: Decision) -> None:
        key = (decision.model, reason_kind(decision))
        counter = self._routed.get(key)
        if counter is None:  # ``labels`` is slow-ish: each label pair's child looked up once
            counter = self._routed[key] = self.routed.labels(*key)
        counter.inc()
        if decision.routing_cost_usd:  # paid whether or not the request is then answered
            self.routing_cost.labels(decision.strategy).inc(decision.routing_cost_usd)

    def _children(self, model: str) -> tuple[Any, ...]:
        """The per-model label children, looked up once (``labels`` is slow-ish)."""
        found = self._per_model.get(model)
        if found is None:
            found = self._per_model[model] = (
                self.tokens.labels(model, "prompt"), self.tokens.labels(model, "completion"),
                self.cost.labels(model), self.cost_hist.labels(model),
                self.latency.labels(model), self.ttft.labels(model))
        return found

    def finished(self, model: str, outcome: str, prompt: int, completion: int, cost: float,
                 total_s: float, ttft_s: float | None, door: str = "chat") -> None:
        key = (model, outcome, door)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(model, outcome, door)
        counter.inc()
        prompt_c, completion_c, cost_c, cost_h, latency_h, ttft_h = self._children(model)
        prompt_c.inc(prompt)
        completion_c.inc(completion)
        cost_c.inc(cost)
        cost_h.observe(cost)
        latency_h.observe(total_s)
        if ttft_s is not None:
            ttft_h.observe(ttft_s)

    def error(self, code: str, door: str = "chat") -> None:
        self.errors.labels(code, door).inc()

    async def endpoint(self, request: Request) -> Response:
        """This process's metrics, or, under ``serve --workers N`` (prometheus_client's
        multiprocess mode), the whole server's: every worker's files, dead ones included."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
