"""OpenTelemetry: a span per request (GenAI semantic conventions, the routing decision) with
a child span per upstream attempt; through the SDK's in-memory exporter, and through the
real OTLP/HTTP exporter to an in-process collector that decodes the protobuf. Off by
default: the SDK is not even imported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.telemetry.config import TelemetryConfig
from pointsman.telemetry.tracing import Telemetry
from pointsman.testing.upstream import UpstreamStub


def write(tmp_path: Path, stub: UpstreamStub, **extra: Any) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o-mini", "gpt-4.1"],
                   "fallbacks": {"gpt-4o-mini": ["gpt-4.1"]}},
        "rules": [{"name": "small", "when": {"max_input_tokens": 100000},
                   "then": {"model": "gpt-4o-mini"}}],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"enabled": False}, "retry": {"max_retries": 0}},
        "budgets": {"store": "memory"}, **extra}))
    return path


def ask(url: str, model: str = "auto") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
        "model": model, "messages": [{"role": "user", "content": "hello there"}]})


@pytest.fixture
def stub(upstream: UpstreamStub) -> UpstreamStub:
    return upstream


def test_request_span_with_a_child_per_attempt(tmp_path: Path, stub: UpstreamStub) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(TelemetryConfig(enabled=True, schedule_delay_s=0.05), exporter)
    stub.behave("gpt-4o-mini", statuses=[503])  # the first attempt fails, gpt-4.1 answers
    with running(create_app(load_config(write(tmp_path, stub)), telemetry=telemetry)) as url:
        r = ask(url)
        assert r.status_code == 200 and r.json()["model"] == "gpt-4.1"
    spans = exporter.get_finished_spans()  # the app's shutdown flushed them
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER]
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT),
                      key=lambda s: s.start_time or 0)
    attrs: dict[str, Any] = dict(request.attributes or {})
    assert request.name == "chat auto"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.response.model"] == "gpt-4.1"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["pointsman.cost_usd"] > 0 and attrs["pointsman.outcome"] == "ok"
    assert attrs["pointsman.route.model"] == "gpt-4o-mini"
    assert attrs["pointsman.route.rule"] == "small"
    assert tuple(attrs["pointsman.route.fallbacks"]) == ("gpt-4.1",)
    assert tuple(attrs["pointsman.models_tried"]) == ("gpt-4o-mini", "gpt-4.1")
    assert attrs["pointsman.request_id"] == r.headers["x-pointsman-request-id"]
    assert [s.name for s in attempts] == ["chat gpt-4o-mini", "chat gpt-4.1"]
    assert request.context is not None
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id == request.context.span_id
    failed, answered = (dict(a.attributes or {}) for a in attempts)
    assert failed["error.type"] == "upstream_server_error"
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert answered["gen_ai.response.model"] == "gpt-4.1"
    assert answered["pointsman.deployment"] == "gpt-4.1@stub"
    assert answered["pointsman.cost_usd"] == pytest.approx(attrs["pointsman.cost_usd"])


def test_refused_request_span_says_why(tmp_path: Path, stub: UpstreamStub) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(TelemetryConfig(enabled=True, schedule_delay_s=0.05), exporter)
    with running(create_app(load_config(write(tmp_path, stub)), telemetry=telemetry)) as url:
        assert ask(url, "no-such-model").status_code == 404
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "model_not_found"
    assert (span.attributes or {})["pointsman.outcome"] == "error"


class Collector:
    """An OTLP/HTTP trace receiver: decodes each export's protobuf."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.exports.append(export)
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[Any]:
        return [span for export in self.exports for resource in export.resource_spans
                for scope in resource.scope_spans for span in scope.spans]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    received = Collector()
    with running(received.app) as url:
        yield received, url


def test_otlp_http_export_to_an_in_process_collector(
        tmp_path: Path, stub: UpstreamStub, collector: tuple[Collector, str]) -> None:
    received, collector_url = collector
    config = write(tmp_path, stub, telemetry={
        "enabled": True, "endpoint": f"{collector_url}/v1/traces",
        "service_name": "gw-test", "schedule_delay_s": 0.05})
    with running(create_app(load_config(config))) as url:
        assert ask(url).status_code == 200
    spans = received.spans()  # shutdown flushed the batch through the real exporter
    by_name = {span.name: span for span in spans}
    assert set(by_name) == {"chat auto", "chat gpt-4o-mini"}
    request, attempt = by_name["chat auto"], by_name["chat gpt-4o-mini"]
    assert attempt.parent_span_id == request.span_id
    assert attempt.trace_id == request.trace_id
    attrs = {a.key: a.value for a in request.attributes}
    assert attrs["gen_ai.response.model"].string_value == "gpt-4o-mini"
    assert attrs["gen_ai.usage.output_tokens"].int_value > 0
    assert attrs["pointsman.cost_usd"].double_value > 0
    service = {a.key: a.value.string_value
               for a in received.exports[0].resource_spans[0].resource.attributes}
    assert service["service.name"] == "gw-test"


def test_telemetry_is_off_by_default_and_the_sdk_not_imported() -> None:
    script = ("import sys\n"
              "from pointsman.config import load_config\n"
              "from pointsman.gateway.app import create_app\n"
              "app = create_app(load_config(None))\n"
              "print(app.state.gateway.telemetry, 'opentelemetry.sdk' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["None", "False"]


def test_unknown_telemetry_key_is_refused(tmp_path: Path, stub: UpstreamStub) -> None:
    from pointsman.errors import ConfigError

    with pytest.raises(ConfigError, match=r"telemetry\.endpoit: unknown key"):
        load_config(write(tmp_path, stub, telemetry={"endpoit": "x"}))
