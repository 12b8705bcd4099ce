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
budget pays for it and its cost is the step's), the answer-aware judges of
:mod:`pointsman.learned.cascade_judges` (``agreement``: a second cheap model's answer;
``learned``: a trained answer scorer) and :class:`FirstJudge` (the first that can judge).
A judge gives a :class:`Verdict`; one that cannot judge gives a ``None`` score, which
accepts the answer.

A judge sees the :class:`Question` (the request and the upstream body every step is
sent); answers of other models that judges ask for (the agreement judge's second cheap
model) are fetched once per request through it and paid like a step. A judge with a
``start(question)`` method is told before the first step (to ask its second model in
parallel).

Streaming: intermediate answers are never streamed; :func:`answer_chunks` turns the final
answer into ``chat.completion.chunk`` dicts for the gateway's SSE writer.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

from pointsman.catalog import Catalog
from pointsman.errors import PointsmanError
from pointsman.executor import Answer, Executor
from pointsman.learned.llm_router import parse_label
from pointsman.learned.model_call import ModelCall, Reply
from pointsman.types import Decision, RouteRequest

_CONFIDENCE = re.compile(r"confidence\W{0,3}\s*([01](?:\.\d+)?|\d{1,3}\s*%)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's score in [0, 1] (None: could not judge), what judging cost and the models
    it asked to answer too (the agreement judge's second model)."""

    score: float | None
    cost_usd: float = 0.0
    asked: tuple[str, ...] = ()


@dataclass
class Question:
    """What every step of one request is asked, and the other models' answers the judges
    fetched for it: each asked once (in parallel when a judge starts it early), each paid
    once (:meth:`partner` hands its cost to the first judge that reads it;
    :meth:`unread_cost` is what was asked and never read)."""

    request: RouteRequest
    body: Mapping[str, Any]
    _asked: dict[str, asyncio.Task[Reply | None]] = field(default_factory=dict)
    _charged: set[str] = field(default_factory=set)

    def start(self, model: str, call: ModelCall, timeout_s: float) -> None:
        if model not in self._asked:
            self._asked[model] = asyncio.ensure_future(self._ask(call, timeout_s))

    async def partner(self, model: str, call: ModelCall, timeout_s: float
                      ) -> tuple[Reply | None, float]:
        """(``model``'s answer or None when it could not answer, the cost to charge now)."""
        self.start(model, call, timeout_s)
        reply = await self._asked[model]
        if reply is None or model in self._charged:
            return reply, 0.0
        self._charged.add(model)
        return reply, reply.cost_usd

    async def _ask(self, call: ModelCall, timeout_s: float) -> Reply | None:
        try:
            return await call(self.request, self.body, timeout_s)
        except (TimeoutError, PointsmanError):
            return None

    async def unread_cost(self) -> tuple[float, tuple[str, ...]]:
        """Wait for every answer asked; (the cost of those no judge read, their models)."""
        cost, models = 0.0, []
        for model, task in self._asked.items():
            reply = await task
            if reply is not None and model not in self._charged:
                self._charged.add(model)
                cost += reply.cost_usd
                models.append(model)
        return cost, tuple(models)


class AnswerJudge(Protocol):
    name: str

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict: ...


def answer_text(answer: Answer | Reply) -> str:
    choices = answer.body.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


class LogprobJudge:
    name = "logprobs"

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
        choices = answer.body.get("choices") or [{}]
        content = (choices[0].get("logprobs") or {}).get("content") or []
        values = [t["logprob"] for t in content
                  if isinstance(t, Mapping) and isinstance(t.get("logprob"), int | float)]
        return Verdict(math.exp(sum(values) / len(values)) if values else None)


class SelfReportedJudge:
    name = "self-reported"

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
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

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
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

    def start(self, question: Question) -> None:
        for judge in self.judges:
            start_judge(judge, question)

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
        spent = 0.0
        asked_all: list[str] = []
        for judge in self.judges:
            verdict = await judge.judge(request, answer, question)
            spent += verdict.cost_usd
            asked_all += verdict.asked
            if verdict.score is not None:
                return Verdict(verdict.score, spent, tuple(asked_all))
        return Verdict(None, spent, tuple(asked_all))


def start_judge(judge: AnswerJudge, question: Question) -> None:
    """Tell a judge a request's steps are about to start (see :class:`Question`)."""
    start = getattr(judge, "start", None)
    if start is not None:
        start(question)


@dataclass(frozen=True, slots=True)
class Step:
    model: str
    score: float | None
    cost_usd: float
    error: str | None = None
    judge_cost_usd: float = 0.0
    asked: tuple[str, ...] = ()  # models the judge asked to answer too


@dataclass(frozen=True, slots=True)
class CascadeAnswer:
    answer: Answer
    steps: tuple[Step, ...]
    unread_cost_usd: float = 0.0  # answers asked for the judges and never read
    unread: tuple[str, ...] = ()

    @property
    def total_cost_usd(self) -> float:
        return self.unread_cost_usd + sum(step.cost_usd + step.judge_cost_usd
                                          for step in self.steps)

    @property
    def asked(self) -> tuple[str, ...]:
        """Every model called, in order: the steps' and those the judges asked."""
        out = [m for s in self.steps for m in (s.model, *s.asked)]
        return tuple(dict.fromkeys([*out, *self.unread]))


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
        question = Question(request, body)
        start_judge(self.judge, question)
        try:
            best, steps = await self._steps(question, decision)
        finally:  # answers asked in parallel are waited for and paid, whatever happened
            unread, models = await question.unread_cost()
        return CascadeAnswer(best, tuple(steps), unread, models)

    async def _steps(self, question: Question, decision: Decision
                     ) -> tuple[Answer, list[Step]]:
        request, body = question.request, question.body
        chain = [decision.model, *decision.fallbacks]
        best = await self.executor.complete(request, decision, body)
        steps = [await self._judged(question, best)]
        while len(steps) < self.max_steps and self._weak(steps[-1].score):
            tried = {m for s in steps for m in (s.model, *s.asked)}
            stronger = self._stronger(chain, best.model, tried)
            if not stronger:
                break
            sub = replace(decision, model=stronger[0], fallbacks=tuple(stronger[1:]))
            try:
                answer = await self.executor.complete(request, sub, body)
            except PointsmanError as exc:
                steps.append(Step(stronger[0], None, 0.0, exc.code))
                break
            steps.append(await self._judged(question, answer))
            best = answer
        return best, steps

    async def _judged(self, question: Question, answer: Answer) -> Step:
        verdict = await self.judge.judge(question.request, answer, question)
        return Step(answer.model, verdict.score, answer.cost.usd,
                    judge_cost_usd=verdict.cost_usd, asked=verdict.asked)

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
