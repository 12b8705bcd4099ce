"""The executor against scripted providers: fallbacks, retries, timeouts, streams, budgets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from fake_providers import BatchingProvider, FakeDeployments, ScriptedProvider
from pointsman.budget.ledger import to_nanos
from pointsman.catalog import Catalog
from pointsman.config import load_config
from pointsman.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamConnectionError,
    UpstreamMisconfiguredError,
    UpstreamRejectedError,
    UpstreamServerError,
)
from pointsman.executor import Executor
from pointsman.gateway.config import RetryConfig
from pointsman.router import resolve_catalog
from pointsman.state import AttemptOutcome, Reservation
from pointsman.types import Decision, RouteRequest

REQUEST = RouteRequest.from_prompt("What is the capital of France?")
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return resolve_catalog(load_config())


def decision(model: str, *fallbacks: str) -> Decision:
    return Decision(model=model, fallbacks=fallbacks, scores={}, reason="test",
                    estimated_cost_usd=0.001, baseline_model=model, baseline_cost_usd=0.002,
                    input_tokens=20, output_tokens=100, strategy="test")


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[AttemptOutcome] = []

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        self.outcomes.append(outcome)


class Sleeper:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Guard:
    """A BudgetGuard that records its calls; refuses the models in ``refuse``."""

    def __init__(self, refuse: Sequence[str] = ()) -> None:
        self.refuse = set(refuse)
        self.log: list[tuple[str, str, float]] = []

    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float
                      ) -> Reservation:
        if model in self.refuse:
            raise BudgetExceededError("budget key:k/day is exhausted", "key:k/day")
        self.log.append(("reserve", model, estimated_usd))
        return Reservation(model, estimated_usd, ("key:k/day",))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        self.log.append(("settle", reservation.token, actual_usd))

    async def release(self, reservation: Reservation) -> None:
        self.log.append(("release", reservation.token, 0.0))


def make(catalog: Catalog, deps: FakeDeployments, **kwargs: object) -> tuple[Executor, Recorder,
                                                                              Sleeper]:
    recorder, sleeper = Recorder(), Sleeper()
    retry = kwargs.pop("retry", RetryConfig(max_retries=0))
    executor = Executor(catalog, deps, recorders=[recorder], sleep=sleeper,
                        retry=retry, rng=random.Random(7), **kwargs)  # type: ignore[arg-type]
    return executor, recorder, sleeper


def test_success_costs_from_usage_and_names_the_catalog_model(catalog: Catalog) -> None:
    deps = FakeDeployments()
    mini = deps.add("gpt-4o-mini", ScriptedProvider("openai"))
    executor, recorder, _ = make(catalog, deps)
    answer = asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini"), BODY))
    assert answer.model == "gpt-4o-mini" and answer.body["model"] == "gpt-4o-mini"
    assert answer.cost.reported and answer.cost.usd == catalog.get("gpt-4o-mini").cost(10, 5)
    assert mini.calls[0].body["model"] == "gpt-4o-mini"
    assert [o.ok for o in recorder.outcomes] == [True]
    assert recorder.outcomes[0].deployment == "gpt-4o-mini@openai"


@pytest.mark.parametrize("error", [
    RateLimitedError("429 from upstream", retry_after=30.0),
    UpstreamServerError("500 from upstream", status=500),
    UpstreamServerError("503 from upstream", status=503),
    UpstreamConnectionError("connection refused"),
])
def test_retryable_errors_fall_back_to_the_next_model(catalog: Catalog,
                                                      error: Exception) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", [error]))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic"))
    executor, recorder, _ = make(catalog, deps)
    answer = asyncio.run(executor.complete(
        REQUEST, decision("gpt-4o-mini", "claude-haiku-4-5"), BODY))
    assert answer.model == "claude-haiku-4-5"
    assert answer.models_tried == ("gpt-4o-mini", "claude-haiku-4-5")
    assert [o.ok for o in recorder.outcomes] == [False, True]
    if isinstance(error, RateLimitedError):
        assert recorder.outcomes[0].metadata["retry_after"] == 30.0


def test_retry_after_is_waited_before_retrying_the_same_deployment(catalog: Catalog) -> None:
    deps = FakeDeployments()
    p = deps.add("gpt-4o-mini", ScriptedProvider(
        "openai", [RateLimitedError("slow down", retry_after=0.7), "ok"]))
    executor, _, sleeper = make(catalog, deps, retry=RetryConfig(
        max_retries=2, backoff_base_s=0.01, backoff_cap_s=1.0))
    answer = asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini"), BODY))
    assert answer.model == "gpt-4o-mini" and len(p.calls) == 2
    assert sleeper.delays == [pytest.approx(0.7)]


def test_a_busy_deployment_is_not_waited_for_while_another_can_answer(
        catalog: Catalog) -> None:
    """A 429 with Retry-After moves on to the next deployment (then model) at once; the
    wait is only for the chain's last deployment."""
    deps = FakeDeployments()
    busy = deps.add("gpt-4o-mini", ScriptedProvider(
        "openai", [RateLimitedError("slow down", retry_after=0.7), "ok"]), name="east")
    spare = deps.add("gpt-4o-mini", ScriptedProvider("openai"), name="west")
    executor, _, sleeper = make(catalog, deps, retry=RetryConfig(
        max_retries=2, backoff_base_s=0.01, backoff_cap_s=1.0))
    answer = asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini"), BODY))
    assert answer.deployment == "west" and len(busy.calls) == 1 and len(spare.calls) == 1
    assert sleeper.delays == []


def test_backoff_is_exponential_jittered_and_capped(catalog: Catalog) -> None:
    executor, _, _ = make(catalog, FakeDeployments(), retry=RetryConfig(
        max_retries=10, backoff_base_s=0.1, backoff_cap_s=0.5))
    err = UpstreamServerError("503")
    delays = [executor.retry_delay(err, i) for i in range(6)]
    for i, delay in enumerate(delays):
        step = min(0.5, 0.1 * 2 ** i)
        assert delay is not None and step / 2 <= delay <= step
    assert executor.retry_delay(err, 10) is None  # retries exhausted
    long_wait = RateLimitedError("429", retry_after=60)
    assert executor.retry_delay(long_wait, 0) is None  # longer than the cap: move on


def test_rejected_4xx_stops_the_chain(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider(
        "openai", [UpstreamRejectedError("invalid tool schema", status=400)]))
    haiku = deps.add("claude-haiku-4-5", ScriptedProvider("anthropic"))
    executor, _, _ = make(catalog, deps)
    with pytest.raises(UpstreamRejectedError, match="invalid tool schema"):
        asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini", "claude-haiku-4-5"),
                                      BODY))
    assert haiku.calls == []


def test_upstream_refusing_pointsman_moves_on_without_retrying(catalog: Catalog) -> None:
    deps = FakeDeployments()
    bad = deps.add("gpt-4o-mini", ScriptedProvider(
        "openai", [UpstreamMisconfiguredError("upstream x refused pointsman's key", status=401),
                   "ok"]))
    azure = deps.add("gpt-4o-mini", ScriptedProvider("azure"))
    executor, recorder, sleeper = make(catalog, deps, retry=RetryConfig(max_retries=3))
    answer = asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini"), BODY))
    assert answer.deployment == "gpt-4o-mini@azure"
    assert len(bad.calls) == 1 and len(azure.calls) == 1 and sleeper.delays == []
    assert [a.code for a in answer.attempts] == ["upstream_misconfigured"]
    assert not recorder.outcomes[0].ok


def test_all_failing_lists_every_attempt(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", [UpstreamServerError("boom 500")]))
    deps.add("gpt-4o-mini", ScriptedProvider("azure", [UpstreamConnectionError("refused")]))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic", [UpstreamServerError("503")]))
    executor, recorder, _ = make(catalog, deps)
    with pytest.raises(AllAttemptsFailedError) as info:
        asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini", "claude-haiku-4-5"),
                                      BODY))
    attempts = info.value.attempts
    assert [(a.model, a.code) for a in attempts] == [
        ("gpt-4o-mini", "upstream_server_error"), ("gpt-4o-mini", "upstream_unreachable"),
        ("claude-haiku-4-5", "upstream_server_error")]
    assert "[gpt-4o-mini@azure] refused" in str(info.value)
    assert len(recorder.outcomes) == 3


def test_hang_times_out_and_falls_back(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", ["hang"]))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic"))
    executor, recorder, _ = make(catalog, deps)
    opened = asyncio.run(executor.stream(REQUEST, decision("gpt-4o-mini", "claude-haiku-4-5"),
                                         BODY))
    assert opened.model == "claude-haiku-4-5"
    assert recorder.outcomes[0].timed_out and recorder.outcomes[0].error_code == "upstream_timeout"


def _drain(executor: Executor, dec: Decision) -> tuple[str, list[str], StreamBrokenError | None,
                                                        float]:
    async def go() -> tuple[str, list[str], StreamBrokenError | None, float]:
        opened = await executor.stream(REQUEST, dec, BODY)
        texts = []
        async for batch in opened.batches():
            for choice in (c for chunk in batch for c in chunk.get("choices") or ()):
                texts.append(choice["delta"].get("content") or "")
        broken = opened.broken
        assert broken is None or isinstance(broken, StreamBrokenError)
        assert opened.cost is not None
        return opened.model, texts, broken, opened.cost.usd
    return asyncio.run(go())


def test_stream_cut_before_first_token_falls_back(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", ["cut_before"]))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic", text="fine thanks"))
    executor, recorder, _ = make(catalog, deps)
    model, texts, broken, cost = _drain(executor, decision("gpt-4o-mini", "claude-haiku-4-5"))
    assert model == "claude-haiku-4-5" and "".join(texts) == "fine thanks" and broken is None
    assert cost == catalog.get("claude-haiku-4-5").cost(10, 5)
    assert [o.ok for o in recorder.outcomes] == [False, True]


def test_stream_cut_after_first_token_reports_broken(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", ["cut_after"], text="one two three"))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic"))
    executor, recorder, _ = make(catalog, deps)
    model, texts, broken, cost = _drain(executor, decision("gpt-4o-mini", "claude-haiku-4-5"))
    assert model == "gpt-4o-mini" and "".join(texts) == "one" and broken is not None
    assert cost > 0  # counted from the streamed tokens: no usage chunk came
    assert recorder.outcomes[-1].error_code == "upstream_stream_broken"


def test_stream_without_usage_is_costed_from_counted_tokens(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", ["no_usage"], text="a b c d"))
    executor, _, _ = make(catalog, deps)
    _, _, broken, cost = _drain(executor, decision("gpt-4o-mini"))
    spec = catalog.get("gpt-4o-mini")
    # prompt estimate + 7 chars ≈ 2 tokens, to the nanodollar (the ledger's unit)
    assert broken is None and cost == to_nanos(spec.cost(20, 2)) / 1e9


def test_budget_reserved_per_model_released_on_failure_settled_on_success(
        catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai", [UpstreamServerError("500")]))
    deps.add("claude-haiku-4-5", ScriptedProvider("anthropic"))
    guard = Guard()
    executor, _, _ = make(catalog, deps, guard=guard)
    asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini", "claude-haiku-4-5"), BODY))
    kinds = [(kind, model) for kind, model, _ in guard.log]
    assert kinds == [("reserve", "gpt-4o-mini"), ("release", "gpt-4o-mini"),
                     ("reserve", "claude-haiku-4-5"), ("settle", "claude-haiku-4-5")]
    assert guard.log[0][2] == catalog.get("gpt-4o-mini").cost(20, 100)
    assert guard.log[3][2] == catalog.get("claude-haiku-4-5").cost(10, 5)


def test_budget_refusal_is_raised_when_no_model_could_be_tried(catalog: Catalog) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4o-mini", ScriptedProvider("openai"))
    executor, _, _ = make(catalog, deps, guard=Guard(refuse=["gpt-4o-mini"]))
    with pytest.raises(BudgetExceededError):
        asyncio.run(executor.complete(REQUEST, decision("gpt-4o-mini"), BODY))


def _batch_sizes(executor: Executor) -> tuple[list[int], str]:
    async def go() -> tuple[list[int], str]:
        opened = await executor.stream(REQUEST, decision("gpt-4o-mini"), BODY)
        sizes, text = [], ""
        async for batch in opened.batches():
            sizes.append(len(batch))
            text += "".join(c["choices"][0]["delta"].get("content") or ""
                            for c in batch if c.get("choices"))
        return sizes, text
    return asyncio.run(go())


def test_streams_travel_in_the_batches_the_provider_hands_over(catalog: Catalog) -> None:
    """Chunks that arrived together stay together (the gateway writes each batch at once);
    a provider without batches gives one chunk per batch. 8 chunks: role, 5 words, stop,
    usage."""
    text = "one two three four five"
    batched = FakeDeployments()
    batched.add("gpt-4o-mini", BatchingProvider("openai", 3, text=text))
    single = FakeDeployments()
    single.add("gpt-4o-mini", ScriptedProvider("openai", text=text))
    assert _batch_sizes(make(catalog, batched)[0]) == ([3, 3, 2], text)
    assert _batch_sizes(make(catalog, single)[0]) == ([2, 1, 1, 1, 1, 1, 1], text)
