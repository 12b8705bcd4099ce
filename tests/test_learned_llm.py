"""LLM-as-router with a fake Provider, and the hybrid cascade's stage recording."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from pointsman.config import _merge, default_config_data, load_config, parse_config
from pointsman.errors import UpstreamServerError
from pointsman.learned.hybrid import HybridScorer
from pointsman.learned.llm_router import LlmRouterScorer
from pointsman.learned.model_call import ProviderCall
from pointsman.learned.register import llm_scorer
from pointsman.providers.base import ChatCall, ChatResult, Provider, Usage
from pointsman.router import resolve_catalog
from pointsman.signals.base import Signal
from pointsman.signals.heuristic import HeuristicScorer
from pointsman.testing import UpstreamStub
from pointsman.types import RouteRequest

CONFIG = load_config()


class FakeProvider:
    """Answers every call with ``content`` after ``delay`` seconds, or raises ``error``."""

    name = "fake"

    def __init__(self, content: str = '{"difficulty": "hard"}', delay: float = 0.0,
                 error: Exception | None = None) -> None:
        self.content, self.delay, self.error = content, delay, error
        self.calls: list[Mapping[str, Any]] = []

    async def complete(self, call: ChatCall) -> ChatResult:
        self.calls.append(call.body)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        body = {"choices": [{"message": {"role": "assistant", "content": self.content}}]}
        return ChatResult(body, Usage(30, 5))

    async def stream(self, call: ChatCall) -> AsyncIterator[Mapping[str, Any]]:
        raise NotImplementedError
        yield {}

    async def aclose(self) -> None:
        return None


CATALOG = resolve_catalog(CONFIG)


def scorer(provider: FakeProvider, timeout_s: float = 5.0) -> LlmRouterScorer:
    assert isinstance(provider, Provider)
    return llm_scorer(CONFIG, {"model": "gpt-4o-mini", "timeout_s": timeout_s},
                      lambda model, purpose: ProviderCall(provider, model, CATALOG.get(model)))


def test_asks_once_then_answers_from_the_cache() -> None:
    provider = FakeProvider()
    llm = scorer(provider)
    request = RouteRequest.from_prompt("Design a lock-free queue and prove it linearisable.")
    first = asyncio.run(llm.ascore(request))
    second = asyncio.run(llm.ascore(request))
    assert first.score == second.score == 85.0 and first.stage == "llm"
    assert len(provider.calls) == 1
    body = provider.calls[0]
    assert body["temperature"] == 0 and body["max_tokens"] <= 16
    assert body["response_format"] == {"type": "json_object"}
    assert body["model"] == "gpt-4o-mini"
    assert llm.score(request).stage == "llm"  # the offline path reads the same cache
    # asking cost the fake's usage (30 in, 5 out) at gpt-4o-mini's prices; the cache is free
    assert first.cost_usd == CATALOG.get("gpt-4o-mini").cost(30, 5) and second.cost_usd == 0


def test_timeout_error_and_garbage_fall_back_to_the_heuristic() -> None:
    request = RouteRequest.from_prompt("hello")
    expected = HeuristicScorer(CONFIG.heuristic).score(request).score
    cases = {
        "timeout": FakeProvider(delay=1.0),
        "upstream_server_error": FakeProvider(error=UpstreamServerError("boom", "m", 503)),
        "unreadable": FakeProvider(content="I think it's hard"),
    }
    for why, provider in cases.items():
        signal = asyncio.run(scorer(provider, timeout_s=0.05).ascore(request))
        assert signal.stage == f"llm-fallback:{why}"
        assert signal.score == expected
    assert scorer(FakeProvider()).score(request).stage == "llm-fallback:offline"
    unknown_class = FakeProvider(content=json.dumps({"difficulty": "extreme"}))
    assert asyncio.run(scorer(unknown_class).ascore(request)).stage == "llm-fallback:unreadable"


class Fixed:
    def __init__(self, name: str, score: float) -> None:
        self.name, self.value = name, score

    def score(self, request: RouteRequest) -> Signal:
        return Signal(self.value, {self.name: self.value})


def test_hybrid_records_the_stage_that_decided() -> None:
    request = RouteRequest.from_prompt("anything")
    provider = FakeProvider(content='{"difficulty": "easy"}')
    llm = scorer(provider)

    def hybrid(heuristic: float, embedding: float) -> HybridScorer:
        return HybridScorer(Fixed("h", heuristic), Fixed("e", embedding), llm,
                            low=20, high=80, margin=15)

    assert hybrid(10, 50).score(request).stage == "heuristic"
    assert hybrid(90, 50).score(request).stage == "heuristic"
    sure = hybrid(50, 90).score(request)
    assert sure.stage == "embedding" and sure.score == 90
    unsure = hybrid(50, 55)
    assert unsure.score(request).stage == "embedding"  # offline: LLM not cached yet
    decided = asyncio.run(unsure.ascore(request))
    assert decided.stage == "llm" and decided.score == 15.0
    assert unsure.score(request).stage == "llm"  # now cached
    assert len(provider.calls) == 1
    assert asyncio.run(hybrid(50, 90).ascore(request)).stage == "embedding"
    no_llm = HybridScorer(Fixed("h", 50), Fixed("e", 52))
    assert no_llm.score(request).stage == "embedding"


def test_llm_router_through_the_upstream_stub(upstream: UpstreamStub) -> None:
    data = _merge(default_config_data(), {"providers": {"endpoints": {"openai": {
        "kind": "openai", "base_url": upstream.base_url, "api_key": "test-key"}}}})
    config = parse_config(data, "stub.yaml")
    llm = llm_scorer(config, {"model": "gpt-4o-mini", "timeout_s": 0.5})
    hard = RouteRequest.from_prompt("Prove the Riemann hypothesis.")
    other = RouteRequest.from_prompt("hello there")

    async def scenario() -> tuple[Signal, Signal, Signal]:
        try:
            upstream.behave("gpt-4o-mini", text='{"difficulty": "hard"}')
            first = await llm.ascore(hard)
            again = await llm.ascore(hard)
            upstream.behave("gpt-4o-mini", hang=True)
            slow = await llm.ascore(other)
            return first, again, slow
        finally:  # the library's client lives as long as its process; here, this loop's
            await cast(Any, llm.call).provider.wire.aclose()

    first, again, slow = asyncio.run(scenario())
    assert first.stage == again.stage == "llm" and first.score == 85.0
    sent = upstream.last_request("gpt-4o-mini")
    assert sent is not None and sent["temperature"] == 0 and sent["max_tokens"] == 16
    assert slow.stage == "llm-fallback:timeout"
    assert upstream.requests("gpt-4o-mini") == 2  # the repeated prompt hit the cache
