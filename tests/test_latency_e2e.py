"""End to end over real HTTP: the gateway in front of the local upstream stub, one model
(gpt-4o-mini) with two deployments (two upstream model names on the stub, ``east`` and
``west``). When ``east`` slows down, the UCB1 chooser moves the traffic to ``west``; when
it recovers, traffic returns through exploration.

Delays are scaled down ten times to keep the test fast: 5 ms vs 50 ms stand for the
issue's 50 ms vs 500 ms, and the reward's ``latency_ref_ms`` is scaled the same way (20 ms
instead of 200 ms). Nothing is timed about our own speed: only where the traffic went
(counted by the stub). The second test sends latency targets through the gateway's
headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fake_providers import FakeDeployment, FakeDeployments, ScriptedProvider
from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.providers.base import Timeouts
from pointsman.providers.openai_compat import OpenAICompatProvider
from pointsman.testing.upstream import UpstreamStub

MODEL = "gpt-4o-mini"
UPSTREAMS = ("east", "west")


def closing(app: ASGIApp, provider: OpenAICompatProvider) -> ASGIApp:
    """The app, closing the provider's HTTP client in the app's loop at shutdown."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await provider.aclose()
            await send(message)
        return await app(scope, receive, sending)
    return wrapped


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[UpstreamStub, httpx.Client]]:
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump({
        "gateway": {"request_log": {"enabled": False}, "retry": {"max_retries": 0}},
        "latency": {"window": {"seconds": 60, "min_samples": 5},
                    "bandit": {"reward": {"latency_ref_ms": 20}}}}))
    config = load_config(path)
    with UpstreamStub() as stub:
        provider = OpenAICompatProvider("stub", stub.base_url)
        deps = FakeDeployments({MODEL: [
            FakeDeployment(f"{MODEL}@{name}", provider, name, Timeouts(2.0, 2.0, 5.0))
            for name in UPSTREAMS]})
        for name in UPSTREAMS:
            stub.behave(name, delay_ms=5)
        with running(closing(create_app(config, deps), provider)) as url, \
                 httpx.Client(base_url=url) as client:
            yield stub, client


def serve(stub: UpstreamStub, client: httpx.Client, n: int) -> dict[str, int]:
    """Send ``n`` requests one after the other; how many each upstream served."""
    before = {name: stub.requests(name) for name in UPSTREAMS}
    for _ in range(n):
        response = client.post("/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, response.text
    return {name: stub.requests(name) - before[name] for name in UPSTREAMS}


def test_traffic_leaves_a_slow_deployment_and_returns_after_recovery(
        world: tuple[UpstreamStub, httpx.Client]) -> None:
    stub, client = world
    warm = serve(stub, client, 40)
    assert warm["east"] >= 10 and warm["west"] >= 10  # cold start: both explored
    stub.behave("east", delay_ms=50)  # east slows down ten times
    serve(stub, client, 20)  # the bounded number of requests it may take to notice
    slow = serve(stub, client, 200)
    assert slow["west"] >= 180, slow  # at least 90% of the following 200 requests
    stub.behave("east", delay_ms=5)  # east recovers
    serve(stub, client, 150)
    back = serve(stub, client, 100)
    assert back["east"] >= 30, back  # traffic returned through exploration


def test_gateway_latency_target_header_and_use_case(tmp_path: Path) -> None:
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": ["gpt-4o", "gpt-4o-mini"], "fit_scale": 60,
                   "weights": {"quality": 0.8, "cost": 0.1, "latency": 0.1}},
        "rules": [], "gateway": {"request_log": {"enabled": False}}}))
    deps = FakeDeployments()
    for model in ("gpt-4o", "gpt-4o-mini"):
        deps.add(model, ScriptedProvider("fake"))
    hard = ("Prove that every finite integral domain is a field, step by step, then implement "
            "a Python function that checks it for Z/pZ and analyze its time complexity.")
    body = {"model": "auto", "messages": [{"role": "user", "content": hard}]}
    with TestClient(create_app(load_config(path), deps)) as client:
        plain = client.post("/v1/chat/completions", json=body)
        assert plain.headers["x-pointsman-model"] == "gpt-4o"
        # no live samples yet: the catalog's typical TTFT (gpt-4o 550 ms, mini 400 ms)
        fast = client.post("/v1/chat/completions", json=body,
                           headers={"x-pointsman-latency-target-ms": "450"})
        assert fast.status_code == 200
        assert fast.headers["x-pointsman-model"] == "gpt-4o-mini"
        assert "450 ms ttft target (request) excluded gpt-4o" in fast.headers[
            "x-pointsman-reason"]
        preset = client.post("/v1/chat/completions", json=body,
                             headers={"x-pointsman-use-case": "autocomplete"})
        assert "no candidate meets the 200 ms ttft target (use case autocomplete)" in \
            preset.headers["x-pointsman-reason"]
        bad = client.post("/v1/chat/completions", json=body,
                          headers={"x-pointsman-use-case": "nope"})
        assert bad.status_code == 400
        assert "unknown use_case 'nope'" in bad.json()["error"]["message"]
