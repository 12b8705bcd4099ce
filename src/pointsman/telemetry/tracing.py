"""Request and attempt spans, following the OpenTelemetry GenAI semantic conventions.

One span per accepted request (``chat <requested model>``, kind SERVER), opened when its
:class:`~pointsman.gateway.exchange.Exchange` starts and ended where its outcome is
recorded (:meth:`Exchange.record`): the requested and answering models, token usage, what
it cost and the routing decision as attributes. One child span per upstream attempt
(``chat <model>``, kind CLIENT), made when the executor reports the attempt to its outcome
recorders: its start is the report time less the attempt's duration (a non-streaming
answer's success is reported just after the answer is sent, so that span ends up to a
few hundred microseconds late).

Spans go to an OTLP/HTTP (protobuf) exporter through the SDK's batch processor: the
request path only builds spans and queues them; encoding and export happen in the
processor's thread. This module imports the SDK, so it is imported only when
``telemetry.enabled`` is true.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pointsman.budget.cost import Cost
from pointsman.errors import ConfigError, PointsmanError
from pointsman.state import AttemptOutcome
from pointsman.telemetry.config import TelemetryConfig
from pointsman.types import Decision, RouteRequest

if TYPE_CHECKING:
    from pointsman.gateway.parse import ChatRequest

OPERATION = "chat"
SCOPE = "pointsman"
MAX_OPEN = 100_000  # spans of requests in flight; beyond it the oldest is ended (a bug's)


def otlp_exporter(cfg: TelemetryConfig) -> SpanExporter:
    """The OTLP/HTTP protobuf exporter of ``telemetry.endpoint``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # pragma: no cover - the extra is missing
        raise ConfigError("telemetry.enabled needs the otel extra: "
                          "pip install 'pointsman[otel]'") from None
    return OTLPSpanExporter(endpoint=cfg.endpoint, headers=dict(cfg.headers),
                            timeout=cfg.timeout_s)


class Telemetry:
    """The tracer of one gateway process and the spans of its requests in flight (keyed by
    the request's :class:`RouteRequest`, which the executor reports attempts with)."""

    def __init__(self, cfg: TelemetryConfig, exporter: SpanExporter | None = None) -> None:
        self.cfg = cfg
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": cfg.service_name}),
            sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)))
        self.provider.add_span_processor(BatchSpanProcessor(
            exporter if exporter is not None else otlp_exporter(cfg),
            max_queue_size=cfg.max_queue_size,
            max_export_batch_size=min(cfg.export_batch_size, cfg.max_queue_size),
            schedule_delay_millis=cfg.schedule_delay_s * 1000,
            export_timeout_millis=cfg.timeout_s * 1000))
        self.tracer = self.provider.get_tracer(SCOPE)
        self.open: dict[int, Span] = {}
        self.recorder = AttemptSpans(self)

    def begin(self, chat: ChatRequest, door: str, request_id: str) -> None:
        """Open the request's span (at the start of its exchange)."""
        span = self.tracer.start_span(f"{OPERATION} {chat.model}", kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attributes(request_attributes(chat, door, request_id))
        if len(self.open) >= MAX_OPEN:  # a request that never recorded (a bug): end it
            self.open.pop(next(iter(self.open))).end()
        self.open[id(chat.route)] = span

    def end(self, route: RouteRequest, decision: Decision | None, outcome: str,
            models_tried: Sequence[str], model: str | None, error: PointsmanError | None,
            cost: Cost, ttft_ms: float | None) -> None:
        """Close the request's span with its outcome (where the exchange records it)."""
        span = self.open.pop(id(route), None)
        if span is None:
            return
        if span.is_recording():  # one set_attributes: each call takes the span's lock
            attributes = outcome_attributes(outcome, models_tried, model, cost, ttft_ms)
            if decision is not None:
                attributes.update(decision_attributes(decision))
            if error is not None:
                attributes["error.type"] = error.code
                span.set_status(Status(StatusCode.ERROR, error.message))
            span.set_attributes(attributes)
        span.end()

    def attempt(self, route: RouteRequest, outcome: AttemptOutcome) -> None:
        """A child span of the request's for one upstream attempt (just reported)."""
        parent = self.open.get(id(route))
        if parent is None or not parent.is_recording():
            return
        end = time.time_ns()
        span = self.tracer.start_span(
            f"{OPERATION} {outcome.model}", context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT, start_time=end - int(outcome.total_ms * 1e6),
            attributes=attempt_attributes(outcome))
        if not outcome.ok:
            span.set_status(Status(StatusCode.ERROR, outcome.error_code or "error"))
        span.end(end_time=end)

    def shutdown(self) -> None:
        """Export what is queued, then stop the processor's thread."""
        self.provider.shutdown()

    async def aclose(self) -> None:
        """At the gateway's shutdown (the export may wait on the network: off the loop)."""
        await asyncio.to_thread(self.shutdown)


class AttemptSpans:
    """The outcome recorder that turns each attempt into a child span."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        self.telemetry.attempt(request, outcome)


def request_attributes(chat: ChatRequest, door: str, request_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION, "gen_ai.request.model": chat.model,
        "pointsman.request_id": request_id, "pointsman.door": door,
        "pointsman.stream": chat.stream}
    if chat.route.max_output_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = chat.route.max_output_tokens
    key = chat.route.metadata.get("key")
    if key is not None:
        attributes["pointsman.key"] = str(key)
    return attributes


def outcome_attributes(outcome: str, models_tried: Sequence[str], model: str | None,
                       cost: Cost, ttft_ms: float | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "pointsman.outcome": outcome, "pointsman.models_tried": list(models_tried),
        "gen_ai.usage.input_tokens": cost.prompt_tokens,
        "gen_ai.usage.output_tokens": cost.completion_tokens,
        "pointsman.cost_usd": cost.usd}
    if model is not None:
        attributes["gen_ai.response.model"] = model
    if cost.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = cost.cached_tokens
    if ttft_ms is not None:
        attributes["pointsman.ttft_ms"] = ttft_ms
    return attributes


def decision_attributes(decision: Decision) -> dict[str, Any]:
    """The routing decision (the full explanation is in the request log)."""
    attributes: dict[str, Any] = {
        "pointsman.route.model": decision.model,
        "pointsman.route.fallbacks": list(decision.fallbacks),
        "pointsman.route.reason": decision.reason,
        "pointsman.route.strategy": decision.strategy,
        "pointsman.route.estimated_cost_usd": decision.estimated_cost_usd,
        "pointsman.route.baseline_model": decision.baseline_model,
        "pointsman.route.routing_cost_usd": decision.routing_cost_usd}
    for name, value in (("rule", decision.rule), ("task_type", decision.task_type),
                        ("stage", decision.stage)):
        if value is not None:
            attributes[f"pointsman.route.{name}"] = value
    return attributes


def attempt_attributes(outcome: AttemptOutcome) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION, "gen_ai.request.model": outcome.model,
        "pointsman.deployment": outcome.deployment,
        "gen_ai.usage.input_tokens": outcome.prompt_tokens,
        "gen_ai.usage.output_tokens": outcome.completion_tokens,
        "pointsman.cost_usd": outcome.cost_usd, "pointsman.timed_out": outcome.timed_out}
    if outcome.ok:
        attributes["gen_ai.response.model"] = outcome.model
    else:
        attributes["error.type"] = outcome.error_code or "error"
    if outcome.ttft_ms is not None:
        attributes["pointsman.ttft_ms"] = outcome.ttft_ms
    return attributes

