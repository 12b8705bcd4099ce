"""A quality-check cascade (FrugalGPT): answer cheaply, check the answer, escalate if weak.

:class:`QualityCascade` wraps the gateway's :class:`~pointsman.executor.Executor`. The
first step asks the decision's model (the executor walks its fallbacks if it fails).
An :class:`AnswerJudge` scores the answer in [0, 1]; below ``threshold`` the next
*stronger* model of the decision's chain (higher catalog quality than the model that
answered, in chain order) is asked, up to ``max_steps`` steps. Every step goes through
the executor, so budget reservations, fallbacks and outcome records apply to each; an
escalation that fails (a budget refusal, every model down) keeps the best answer so far.

Judges: :class:`LogprobJudge` (the mean token probability, when the provider returned
``logprobs``), :class:`SelfReportedJudge` (a ``confidence`` the model states in its
answer, e.g. ``Confidence: 0.8`` or JSON ``{"confidence": 0.8}``), :class:`ModelJudge`
(a judge model asked for a 0-10 grade as JSON, called through the executor: the caller's
budget pays for it and its cost is the step's) and :class:`FirstJudge` (the first that
can judge). A judge gives a :class:`Verdict`; one that cannot judge gives a ``None`` score,
which accepts the answer.

Streaming: intermediate answers are never streamed; :func:`answer_chunks` turns the final
answer into ``chat.completion.chunk`` dicts for the gateway's SSE writer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from pointsman.catalog import Catalog
from pointsman.errors import PointsmanError
from pointsman.executor import Answer, Executor
from pointsman.learned.llm_router import parse_label
from pointsman.learned.model_call import ModelCall
from pointsman.types import Decision, RouteRequest

_CONFIDENCE = re.compile(r"confidence\W{0,3}\s*([01](?:\.\d+)?|\d{1,3}\s*%)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's score in [0, 1] (None: could not judge) and what judging cost."""

    score: float | None
    cost_usd: float = 0.0


class AnswerJudge(Protocol):
    name: str

    async def judge(self, request: RouteRequest, answer: Answer) -> Verdict: ...


def answer_text(answer: Answer) -> str:
    choices = answer.body.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


class LogprobJudge:
    name = "logprobs"

    async def judge(self, request: RouteRequest, answer: Answer) -> Verdict:
        choices = answer.body.get("choices") or [{}]
        content = (choices[0].get("logprobs") or {}).get("content") or []
        values = [t["logprob"] for t in content
                  if isinstance(t, Mapping) and isinstance(t.get("logprob"), int | float)]
        return Verdict(math.exp(sum(values) / len(values)) if values else None)


class SelfReportedJudge:
    name = "self-reported"

    async def judge(self, request: RouteRequest, answer: Answer) -> Verdict:
        match = _CONFIDENCE.search(answer_text(answer))
        if match is None:
            return Verdict(None)
        raw = match.group(1).replace(" ", "")
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        return Verdict(min(max(value, 0.0), 1.0))


class ModelJudge:
    """Asks a judge model for ``{"grade": 0-10}`` through a
    :class:`~pointsman.learned.model_call.ModelCall` (the gateway's goes through the
    executor: the caller's budget pays for it); a timeout, an error or a refused budget
    cannot judge."""

    name = "judge-model"
    grades: ClassVar[dict[str, float]] = {str(i): i / 10 for i in range(11)}

    def __init__(self, call: ModelCall, timeout_s: float = 5.0) -> None:
        self.call = call
        self.timeout_s = timeout_s

    async def judge(self, request: RouteRequest, answer: Answer) -> Verdict:
        body = {"temperature": 0, "max_tokens": 16, "response_format": {"type": "json_object"},
                "messages": [
                    {"role": "system", "content": "Grade how well the answer serves the "
                     "request, 0 (wrong or useless) to 10 (fully correct). Reply with JSON "
                     "only: {\"grade\": <0-10>}."},
                    {"role": "user", "content": f"Request:\n{request.last_user_text[:4000]}"
                     f"\n\nAnswer:\n{answer_text(answer)[:4000]}"}]}
        try:
            reply = await self.call(request, body, self.timeout_s)
        except (TimeoutError, PointsmanError):
            return Verdict(None)
        label = parse_label(reply.body, self.grades, "grade")
        return Verdict(None if label is None else self.grades[label], reply.cost_usd)


class FirstJudge:
    """The first of several judges that can judge (what the others cost is counted)."""

    name = "first"

    def __init__(self, judges: Sequence[AnswerJudge]) -> None:
        self.judges = tuple(judges)

    async def judge(self, request: RouteRequest, answer: Answer) -> Verdict:
        spent = 0.0
        for judge in self.judges:
            verdict = await judge.judge(request, answer)
            spent += verdict.cost_usd
            if verdict.score is not None:
                return Verdict(verdict.score, spent)
        return Verdict(None, spent)


@dataclass(frozen=True, slots=True)
class Step:
    model: str
    score: float | None
    cost_usd: float
    error: str | None = None
    judge_cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class CascadeAnswer:
    answer: Answer
    steps: tuple[Step, ...]

    @property
    def total_cost_usd(self) -> float:
        return sum(step.cost_usd + step.judge_cost_usd for step in self.steps)


class QualityCascade:
    def __init__(self, executor: Executor, catalog: Catalog, judge: AnswerJudge, *,
                 threshold: float = 0.7, max_steps: int = 3) -> None:
        self.executor = executor
        self.catalog = catalog
        self.judge = judge
        self.threshold = threshold
        self.max_steps = max(1, max_steps)

    async def complete(self, request: RouteRequest, decision: Decision,
                       body: Mapping[str, Any]) -> CascadeAnswer:
        chain = [decision.model, *decision.fallbacks]
        best = await self.executor.complete(request, decision, body)
        steps = [await self._judged(request, best)]
        while len(steps) < self.max_steps and self._weak(steps[-1].score):
            stronger = self._stronger(chain, best.model, {s.model for s in steps})
            if not stronger:
                break
            sub = replace(decision, model=stronger[0], fallbacks=tuple(stronger[1:]))
            try:
                answer = await self.executor.complete(request, sub, body)
            except PointsmanError as exc:
                steps.append(Step(stronger[0], None, 0.0, exc.code))
                break
            steps.append(await self._judged(request, answer))
            best = answer
        return CascadeAnswer(best, tuple(steps))

    async def _judged(self, request: RouteRequest, answer: Answer) -> Step:
        verdict = await self.judge.judge(request, answer)
        return Step(answer.model, verdict.score, answer.cost.usd,
                    judge_cost_usd=verdict.cost_usd)

    def _weak(self, score: float | None) -> bool:
        return score is not None and score < self.threshold

    def _stronger(self, chain: list[str], answered: str, tried: set[str]) -> list[str]:
        floor = self.catalog.get(answered).quality
        return [m for m in chain if m not in tried and self.catalog.get(m).quality > floor]


def answer_chunks(answer: Answer) -> Iterator[dict[str, Any]]:
    """The final answer as ``chat.completion.chunk`` dicts (role, content, finish)."""
    base = {"id": answer.body.get("id", "chatcmpl-cascade"), "object": "chat.completion.chunk",
            "created": answer.body.get("created", 0), "model": answer.model}
    choices = answer.body.get("choices") or [{}]
    finish = choices[0].get("finish_reason") or "stop"
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {"content": answer_text(answer)},
                                "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
           **({"usage": answer.body["usage"]} if "usage" in answer.body else {})}


def dumps_steps(steps: Sequence[Step]) -> str:
    """The steps as a compact header value: ``model:score,model:score``."""
    return json.dumps([[s.model, None if s.score is None else round(s.score, 3)]
                       for s in steps], separators=(",", ":"))
