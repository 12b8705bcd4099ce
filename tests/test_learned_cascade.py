"""The FrugalGPT quality-check cascade over the real executor with fake providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from fake_providers import FakeDeployment
from pointsman.config import load_config
from pointsman.errors import UpstreamServerError
from pointsman.executor import Answer, Executor
from pointsman.learned.cascade import (
    FirstJudge,
    LogprobJudge,
    ModelJudge,
    QualityCascade,
    SelfReportedJudge,
    Verdict,
    answer_chunks,
)
from pointsman.learned.model_call import ExecutorCall
from pointsman.providers.base import ChatCall, ChatResult, Provider, Timeouts, Usage
from pointsman.router import Router
from pointsman.types import RouteRequest

ROUTER = Router(load_config())
TIMEOUTS = Timeouts()
REQUEST = RouteRequest.from_prompt("Explain the proof of the four colour theorem.")


class Replies:
    """A provider whose answer text depends on the upstream model asked."""

    name = "fake"

    def __init__(self, texts: Mapping[str, str], failing: Sequence[str] = ()) -> None:
        self.texts, self.failing = texts, set(failing)
        self.asked: list[str] = []

    async def complete(self, call: ChatCall) -> ChatResult:
        model = str(call.body["model"])
        self.asked.append(model)
        if model in self.failing:
            raise UpstreamServerError("down", model, 503)
        body = {"choices": [{"message": {"role": "assistant", "content": self.texts[model]},
                             "finish_reason": "stop"}]}
        return ChatResult(body, Usage(10, 10))

    async def stream(self, call: ChatCall) -> AsyncIterator[Mapping[str, Any]]:
        raise NotImplementedError
        yield {}

    async def aclose(self) -> None:
        return None


class Source:
    """Every model served by one provider (one deployment each)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def deployments(self, model: str) -> Sequence[FakeDeployment]:
        return [FakeDeployment(f"{model}-1", self.provider, model, TIMEOUTS)]


async def no_wait(seconds: float) -> None:
    return None


def cascade(provider: Replies, threshold: float = 0.7, steps: int = 3) -> QualityCascade:
    executor = Executor(ROUTER.catalog, Source(provider), sleep=no_wait)
    return QualityCascade(executor, ROUTER.catalog, SelfReportedJudge(), threshold=threshold,
                          max_steps=steps)


def decision() -> Any:
    base = ROUTER.decide(REQUEST)
    return replace(base, model="gpt-4.1-nano",
                   fallbacks=("gpt-4o-mini", "gpt-4.1", "claude-opus-4-5"))


def test_escalates_until_the_answer_is_good_enough() -> None:
    provider = Replies({"gpt-4.1-nano": "maybe. Confidence: 0.3",
                        "gpt-4o-mini": "hmm. Confidence: 50%",
                        "gpt-4.1": "proof... Confidence: 0.9",
                        "claude-opus-4-5": "never asked"})
    result = asyncio.run(cascade(provider).complete(REQUEST, decision(), {"messages": []}))
    assert [s.model for s in result.steps] == ["gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1"]
    assert [s.score for s in result.steps] == [0.3, 0.5, 0.9]
    assert result.answer.model == "gpt-4.1" and "opus" not in " ".join(provider.asked)
    assert result.total_cost_usd > result.answer.cost.usd
    chunks = list(answer_chunks(result.answer))
    assert chunks[1]["choices"][0]["delta"]["content"] == "proof... Confidence: 0.9"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stops_at_a_good_answer_the_step_bound_or_a_failure() -> None:
    good = Replies({"gpt-4.1-nano": "Confidence: 0.95"})
    assert len(asyncio.run(cascade(good).complete(REQUEST, decision(), {})).steps) == 1
    weak = dict.fromkeys(("gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1", "claude-opus-4-5"),
                         "Confidence: 0.1")
    bounded = asyncio.run(cascade(Replies(weak), steps=2).complete(REQUEST, decision(), {}))
    assert len(bounded.steps) == 2
    broken = Replies(weak, failing=["gpt-4o-mini", "gpt-4.1", "claude-opus-4-5"])
    kept = asyncio.run(cascade(broken).complete(REQUEST, decision(), {}))
    assert kept.answer.model == "gpt-4.1-nano"
    assert kept.steps[-1].error == "all_models_failed"
    unjudged = Replies({"gpt-4.1-nano": "no confidence stated"})
    assert len(asyncio.run(cascade(unjudged).complete(REQUEST, decision(), {})).steps) == 1


def answer(body: dict[str, Any]) -> Answer:
    from pointsman.budget.cost import Cost

    return Answer("m", "d", body, Cost(1, 1, 0.0, True), 1.0, (), ("m",))


def judge_model(provider: Replies, guard: Any = None) -> ModelJudge:
    executor = Executor(ROUTER.catalog, Source(provider), sleep=no_wait, guard=guard)
    return ModelJudge(ExecutorCall(executor, ROUTER.catalog.get("gpt-4o-mini"), "judge"))


def test_judges() -> None:
    logprobs = {"choices": [{"message": {"content": "x"},
                             "logprobs": {"content": [{"logprob": -0.1}, {"logprob": -0.3}]}}]}
    score = asyncio.run(LogprobJudge().judge(REQUEST, answer(logprobs))).score
    assert score is not None and abs(score - 0.8187) < 1e-3
    assert asyncio.run(LogprobJudge().judge(REQUEST, answer({"choices": []}))).score is None
    grader = Replies({"gpt-4o-mini": '{"grade": 7}'})
    judged = asyncio.run(judge_model(grader).judge(REQUEST, answer(logprobs)))
    usage_cost = ROUTER.catalog.get("gpt-4o-mini").cost(10, 10)  # Replies reports 10 + 10
    assert judged.score == 0.7 and judged.cost_usd == usage_cost
    down = Replies({}, failing=["gpt-4o-mini"])
    first = FirstJudge([LogprobJudge(), judge_model(down)])
    assert asyncio.run(first.judge(REQUEST, answer({"choices": [{}]}))).score is None
    assert asyncio.run(first.judge(REQUEST, answer(logprobs))).score == score


class Ledger:
    """A BudgetGuard that records what it reserves and settles; refuses when ``broke``."""

    def __init__(self, broke: bool = False) -> None:
        self.broke = broke
        self.calls: list[tuple[str, str, Any]] = []

    async def reserve(self, request: RouteRequest, model: str, estimated_usd: float) -> Any:
        from pointsman.errors import BudgetExceededError
        from pointsman.state import Reservation

        if self.broke:
            raise BudgetExceededError("budget user:u/day is exhausted", "user:u/day")
        self.calls.append(("reserve", model, request.metadata.get("user")))
        return Reservation(model, estimated_usd, ("user:u/day",))

    async def settle(self, reservation: Any, actual_usd: float) -> None:
        self.calls.append(("settle", reservation.token, actual_usd))

    async def release(self, reservation: Any) -> None:
        self.calls.append(("release", reservation.token, 0.0))


def test_the_judge_model_is_charged_to_the_callers_budget_and_counted() -> None:
    caller = RouteRequest.from_prompt("Explain the four colour theorem.", metadata={"user": "u"})
    ledger = Ledger()
    verdict = asyncio.run(judge_model(Replies({"gpt-4o-mini": '{"grade": 9}'}), ledger)
                          .judge(caller, answer({"choices": [{"message": {"content": "x"}}]})))
    assert verdict.score == 0.9
    assert [c[0] for c in ledger.calls] == ["reserve", "settle"]
    assert ledger.calls[0][1:] == ("gpt-4o-mini", "u")
    assert ledger.calls[1][2] == verdict.cost_usd > 0
    refused = asyncio.run(judge_model(Replies({"gpt-4o-mini": '{"grade": 9}'}),
                                      Ledger(broke=True)).judge(caller, answer({})))
    assert refused == Verdict(None, 0.0)  # no budget left: the answer is not judged


def test_judging_costs_are_part_of_the_cascade_total() -> None:
    provider = Replies({"gpt-4.1-nano": "a", "gpt-4o-mini": '{"grade": 2}', "gpt-4.1": "b"})
    executor = Executor(ROUTER.catalog, Source(provider), sleep=no_wait)
    judge = ModelJudge(ExecutorCall(executor, ROUTER.catalog.get("gpt-4o-mini"), "judge"))
    chain = replace(decision(), fallbacks=("gpt-4.1",))
    result = asyncio.run(QualityCascade(executor, ROUTER.catalog, judge, threshold=0.5)
                         .complete(REQUEST, chain, {"messages": []}))
    assert [s.model for s in result.steps] == ["gpt-4.1-nano", "gpt-4.1"]
    judged = sum(s.judge_cost_usd for s in result.steps)
    assert judged == pytest.approx(2 * ROUTER.catalog.get("gpt-4o-mini").cost(10, 10))
    assert result.total_cost_usd == pytest.approx(sum(s.cost_usd for s in result.steps) + judged)
