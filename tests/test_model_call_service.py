"""The ``call_model`` service: scorers and judges that ask a model are handed the calls
(through the executor in the gateway, to recorded answers in the lab) instead of the
gateway special-casing scorer names; the gateway's agreement judge over recorded answers
agrees with the lab's replay, row for row."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openai
import yaml

from gateway_harness import running
from pointsman.budget.cost import Cost
from pointsman.config import PointsmanConfig, load_config
from pointsman.executor import Answer
from pointsman.gateway.app import create_app
from pointsman.learned import answers as an
from pointsman.learned.cascade import Question
from pointsman.learned.cascade_judges import AgreementJudge, Partner
from pointsman.learned.model_call import CallModel, ModelCall, recorded_calls
from pointsman.learning import OutcomeTable
from pointsman.registry import scorers
from pointsman.signals.base import Signal
from pointsman.testing.upstream import UpstreamStub
from pointsman.types import RouteRequest

HANDED: list[ModelCall] = []


class AsksAModel:
    """A plugin-like scorer that asks ``gpt-4.1-mini`` once per request (synchronously it
    cannot: it records the call it was handed and scores 10)."""

    name = "test-asks-a-model"

    def __init__(self, call: ModelCall) -> None:
        self.call = call

    def score(self, request: RouteRequest) -> Signal:
        return Signal(10.0)

    async def ascore(self, request: RouteRequest) -> Signal:
        reply = await self.call(request, {"messages": [{"role": "user", "content": "rate"}],
                                          "max_tokens": 4}, 5.0)
        return Signal(90.0 if "hard" in str(reply.body) else 10.0, stage="llm")


def _factory(config: PointsmanConfig, options: Mapping[str, Any],
             call_model: CallModel | None) -> AsksAModel:
    assert call_model is not None, "the gateway hands its call_model service"
    call = call_model("gpt-4.1-mini", "test scorer")
    HANDED.append(call)
    return AsksAModel(call)


def test_a_registered_scorer_is_handed_the_gateways_calls(upstream: UpstreamStub,
                                                          tmp_path: Path) -> None:
    scorers.register("test-asks-a-model", _factory, replace=True)
    models = ["gpt-4o-mini", "gpt-4.1"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "router": {"candidates": models, "scorer": "test-asks-a-model", "mode": "threshold",
                   "strong_model": "gpt-4.1", "weak_model": "gpt-4o-mini", "threshold": 0.5},
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": upstream.base_url}},
                      "deployments": {m: [{"endpoint": "stub"}]
                                      for m in [*models, "gpt-4.1-mini"]}},
        "budgets": {"store": "memory"}}))
    upstream.behave("gpt-4.1-mini", text="hard")
    with running(create_app(load_config(path))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}])
    assert HANDED and type(HANDED[-1]).__name__ == "ExecutorCall"
    assert upstream.requests("gpt-4.1-mini") == 1  # asked through the executor
    assert raw.headers["x-pointsman-model"] == "gpt-4.1"


def _table() -> OutcomeTable:
    texts = [("#### 7", "The answer is 7."), ("(B)", "C"), ("{\"a\": 1}", "{ \"a\": 1 }"),
             ("no idea", "no idea."), ("Answer: D", "D")]
    n = len(texts)
    answers = np.empty((n, 2), dtype=object)
    for i, pair in enumerate(texts):
        answers[i] = pair
    return OutcomeTable(tuple(f"question {i}" for i in range(n)), ("a", "b"),
                        np.ones((n, 2)), np.tile([0.001, 0.002], (n, 1)), (), "toy", (),
                        answers)


def test_the_gateways_agreement_judge_over_recorded_answers_matches_the_replay() -> None:
    table = _table()
    assert table.answers is not None
    calls = recorded_calls(table)
    judge = AgreementJudge(Partner("b", calls("b", "test"), None), "auto")

    async def verdicts() -> list[float | None]:
        out = []
        for i, prompt in enumerate(table.prompts):
            question = Question(RouteRequest.from_prompt(prompt), {})
            mine = Answer("a", "d", {"choices": [{"message": {
                "content": str(table.answers[i, 0])}}]},  # type: ignore[index]
                Cost(1, 1, 0.0, True), 1.0, (), ("a",))
            out.append((await judge.judge(question.request, mine, question)).score)
        return out

    gateway = asyncio.run(verdicts())
    replay = [an.agree(an.auto(str(x)), an.auto(str(y))) for x, y in table.answers]
    assert [v == 1.0 for v in gateway] == replay == [True, False, True, True, True]
