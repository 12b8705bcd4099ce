"""The gateway in front of the upstream stub (all three upstream wires), attacked through
its own OpenAPI document (schemathesis, positive and negative cases) and by the
type-confusion fuzzer (:mod:`pointsman.testing.fuzz`): no 5xx, no dropped connection.

A short, seeded run of each is part of the suite; ``POINTSMAN_FUZZ_CASES`` and
``POINTSMAN_SCHEMATHESIS_EXAMPLES`` make them longer (``benchmarks/fuzz_gateway.py`` runs
the long fuzz and reports its figures)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway_harness import running
from pointsman import jsonio
from pointsman.gateway.app import create_app
from pointsman.gateway.openapi import document
from pointsman.testing import fuzz
from pointsman.testing.upstream import UpstreamStub

FUZZ_CASES = int(os.environ.get("POINTSMAN_FUZZ_CASES", "400"))
EXAMPLES = int(os.environ.get("POINTSMAN_SCHEMATHESIS_EXAMPLES", "5"))
AUTH = {"authorization": f"Bearer {fuzz.KEY}"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with UpstreamStub() as stub, running(create_app(
            fuzz.gateway_config(stub.url, stub.base_url))) as base:
        yield base


def test_openapi_document_describes_every_route(url: str) -> None:
    served = httpx.get(f"{url}/openapi.json")
    assert served.status_code == 200
    doc = served.json()
    assert doc == document() and doc["openapi"] == "3.1.0"
    app = create_app(fuzz.gateway_config("http://127.0.0.1:9", "http://127.0.0.1:9/v1"))
    routes = {(r.path.replace("{model:path}", "{model}"), m.lower())  # type: ignore[attr-defined]
              for r in app.routes for m in r.methods or () if m != "HEAD"}  # type: ignore[attr-defined]
    described = {(p, m) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert described == routes - {("/openapi.json", "get")}
    chat = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    fields = chat["application/json"]["schema"]["properties"]
    assert fields["stop"]["anyOf"][0]["type"] == "string" and "tools" in fields
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}


def test_the_base_bodies_are_accepted_by_every_door_and_wire(url: str) -> None:
    client = fuzz.Client(url, fuzz.KEY)
    try:
        for door, make in fuzz.DOORS.items():
            for model in fuzz.WIRES:
                status, data = client.post(door, jsonio.dumps(make(model)))
                assert status == 200, (door, model, data[:300])
    finally:
        client.close()


def test_type_confusion_fuzz_finds_no_5xx_and_no_dropped_connection(url: str) -> None:
    report = fuzz.run(url, fuzz.KEY, fuzz.cases(list(fuzz.WIRES), FUZZ_CASES, seed=7))
    assert report.sent == FUZZ_CASES
    assert report.findings == [], report.summary()
    assert report.statuses[400] > 0 and report.statuses[200] > 0  # both kinds were sent


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_against_the_openapi_document(url: str, mode: str) -> None:
    schemathesis: Any = pytest.importorskip("schemathesis")
    hypothesis: Any = pytest.importorskip("hypothesis")
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_dict(document())
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        def one(case: Any) -> None:
            nonlocal sent
            sent += 1
            response = case.call(base_url=url, headers=AUTH, timeout=60)
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except AssertionError as exc:
                failures.append(f"{case.operation.label}: {str(exc)[:300]}")

        settings = hypothesis.settings(
            max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck))
        call = settings(hypothesis.given(case=operation.as_strategy(GenerationMode(mode)))(one))

        try:
            call()
        except hypothesis.errors.Unsatisfiable:  # nothing to break (GET /health, negative)
            assert mode == "negative"
    assert sent > 0
    assert failures == []
