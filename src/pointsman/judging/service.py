"""Judged samples, live: :meth:`Judging.offer` is called once an answer is recorded; a
sampled request (a hash of its id against ``judging.share``) is queued and the caller is
never kept waiting: the queue has a bound, a sample that finds it full is dropped and
counted, and ``max_concurrency`` background workers (tasks of the gateway's lifespan, not of
any request) judge the queue. Each sample: the reference model answers the prompt again,
the judge grades (see :mod:`pointsman.judging.grading`), the grade is stored as a label of
source ``judge`` for the routed model, with what it cost.

Reference and judge calls go through an executor of their own (same catalog, deployments
and health as the gateway's) whose only budget is the judging cap
(:class:`~pointsman.judging.budget.JudgingBudget`): no user budget pays, and they are no
user traffic (neither in the request log nor in the request metrics).

A request answered by the reference model itself is a tie by construction in pairwise mode
(label 0.5, no call made); in absolute mode its answer is rated with no reference beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter

from pointsman.errors import BudgetExceededError, PointsmanError
from pointsman.executor import Executor
from pointsman.judging import grading
from pointsman.judging.budget import JudgingBudget, day_start
from pointsman.judging.config import JudgingConfig
from pointsman.learned.model_call import side_decision
from pointsman.stores.labels import Label, LabelStore
from pointsman.tokens import estimate_text_tokens
from pointsman.types import ModelSpec, RouteRequest

log = logging.getLogger("pointsman.judging")
SOURCE = "judge"
Result = Literal["judged", "skipped", "refused", "failed", "dropped", "cancelled"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One answered request to judge."""

    request_id: str
    route: RouteRequest
    messages: Sequence[Mapping[str, Any]]
    model: str  # the model that answered
    answer: str


@dataclass(frozen=True, slots=True)
class Judged:
    result: Result
    label: Label | None = None
    cost_usd: float = 0.0
    why: str = ""


class JudgingMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.samples = Counter("pointsman_judged_samples", "Judged samples by result "
                               "(judged, skipped, refused by the judging budget, failed, "
                               "dropped with the queue full, cancelled at shutdown).",
                               ["result"], registry=registry)
        self.cost = Counter("pointsman_judging_cost_usd", "Spend of judged samples (reference "
                            "and judge calls) in US dollars, by model.", ["model"],
                            registry=registry)


def margin(tokens: int) -> int:
    """The input tokens a reservation assumes: the estimate can be short of the count."""
    return math.ceil(tokens * 1.5) + 16


class Judging:
    def __init__(self, cfg: JudgingConfig, executor: Executor, budget: JudgingBudget,
                 registry: CollectorRegistry | None = None) -> None:
        assert cfg.reference_model and cfg.judge_model
        self.cfg = cfg
        self.executor = executor
        self.budget = budget
        self.reference = executor.catalog.get(cfg.reference_model)
        self.judge_spec = executor.catalog.get(cfg.judge_model)
        self.metrics = JudgingMetrics(registry)
        self.labels: LabelStore | None = None  # set when the request log's database opens
        self.queue: asyncio.Queue[Sample] = asyncio.Queue(cfg.queue_size)
        self.workers: list[asyncio.Task[None]] = []
        self.closed = False
        self.counts: dict[str, int] = {}

    # -- the gateway's side -------------------------------------------------------------
    def wants(self, request_id: str) -> bool:
        return not self.closed and grading.sampled(request_id, self.cfg.share)

    def offer(self, request_id: str, route: RouteRequest,
              messages: Sequence[Mapping[str, Any]], model: str,
              text: Callable[[], str]) -> bool:
        """Queue the answered request when it is sampled; never waits (a full queue drops
        the sample and counts it). True when queued."""
        if not self.wants(request_id):
            return False
        try:
            self.queue.put_nowait(Sample(request_id, route, list(messages), model, text()))
        except asyncio.QueueFull:
            self._count("dropped")
            return False
        return True

    async def start(self, labels: LabelStore | None) -> None:
        """Start the workers (from the gateway's lifespan) and read today's spend back."""
        await self.attach(labels)
        loop = asyncio.get_running_loop()
        self.workers = [loop.create_task(self._work()) for _ in range(self.cfg.max_concurrency)]

    async def attach(self, labels: LabelStore | None) -> None:
        """Store labels in ``labels``; count the day's judging spend they hold so far."""
        self.labels = labels
        if labels is not None:
            try:
                now = self.budget.clock()
                _, spent = await labels.spend(SOURCE, day_start(now), now + 1)
                self.budget.seed(spent)
            except PointsmanError as exc:
                log.error("judging: today's spend not read back: %s", exc.message)

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop taking samples; let those being judged finish for up to ``grace_s``, then
        cancel the rest (a cancelled call's hold is released: nothing is charged for it).
        Samples still queued are counted ``cancelled``."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
            self._count("cancelled")
        busy = [w for w in self.workers if not w.done()]
        if busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), grace_s)
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            sample = await self.queue.get()
            try:
                judged = await self.judge(sample)
                await self.store(judged)
            except asyncio.CancelledError:
                self._count("cancelled")
                raise
            except Exception:  # a bug: logged with its trace; the worker goes on
                log.exception("judging: sample %s failed", sample.request_id)
                self._count("failed")
            finally:
                self.queue.task_done()

    async def store(self, judged: Judged) -> None:
        self._count(judged.result)
        if judged.result != "judged" and judged.why:
            log.info("judging: %s (%s)", judged.result, judged.why)
        if judged.label is None or self.labels is None:
            return
        try:
            await self.labels.put(judged.label)
        except PointsmanError as exc:
            log.error("judging: label of %s not stored: %s", judged.label.request_id,
                      exc.message)

    def _count(self, result: str) -> None:
        self.counts[result] = self.counts.get(result, 0) + 1
        self.metrics.samples.labels(result).inc()

    # -- one sample ---------------------------------------------------------------------
    async def judge(self, sample: Sample) -> Judged:
        """Grade one sample (the live workers and ``pointsman judge`` both call this)."""
        if not sample.answer.strip():
            return Judged("skipped", why=f"{sample.request_id}: no answer text")
        same = sample.model == self.reference.name
        if same and self.cfg.mode == "pairwise":
            return Judged("judged", self._label(sample, 0.5, 0.0, "answered by the reference "
                                                "model: a tie by construction"))
        if not self.budget.fits(self.worst_case(sample)):
            self.budget.refuse()
            return Judged("refused", why="the judging budget is spent")
        spent = [0.0]
        try:
            reference = sample.answer if same else await self.call(
                self.reference, sample.route, sample.messages, self.cfg.max_tokens, spent)
            question = grading.question_text(sample.messages)
            replies = await asyncio.gather(*(
                self.call(self.judge_spec, sample.route, [{"role": "user", "content": p}],
                           self.cfg.judge_max_tokens, spent)
                for p in grading.judge_prompts(self.cfg, question, sample.answer,
                                               "" if same else reference)))
        except BudgetExceededError as exc:
            return Judged("refused", cost_usd=spent[0], why=exc.message)
        except (PointsmanError, TimeoutError) as exc:
            why = exc.message if isinstance(exc, PointsmanError) else "timed out"
            return Judged("failed", cost_usd=spent[0], why=why)
        score = grading.score(self.cfg, replies)
        if score is None:
            return Judged("failed", cost_usd=spent[0], why=f"unreadable verdicts {replies!r}")
        comment = f"{self.cfg.mode} vs {self.reference.name} by {self.judge_spec.name}"
        return Judged("judged", self._label(sample, score, spent[0], comment), spent[0])

    def _label(self, sample: Sample, score: float, cost: float, comment: str) -> Label:
        return Label(sample.request_id, SOURCE, score, model=sample.model, comment=comment,
                     cost_usd=cost)

    def worst_case(self, sample: Sample) -> float:
        """What the sample's calls may cost at most (each reserves its own share)."""
        prompt = sum(estimate_text_tokens(grading.content_text(m.get("content")))
                     for m in sample.messages)
        answer = estimate_text_tokens(sample.answer)
        reference = self.reference.cost(margin(prompt), self.cfg.max_tokens)
        template = estimate_text_tokens(self.cfg.pairwise_prompt if self.cfg.mode == "pairwise"
                                        else self.cfg.absolute_prompt)
        judge_in = margin(template + prompt + answer + self.cfg.max_tokens)
        calls = 2 if self.cfg.mode == "pairwise" else 1
        return reference + calls * self.judge_spec.cost(judge_in, self.cfg.judge_max_tokens)

    async def call(self, spec: ModelSpec, route: RouteRequest,
                    messages: Sequence[Mapping[str, Any]], max_tokens: int,
                    spent: list[float]) -> str:
        """Ask ``spec``'s model through the judging executor (its budget reserves first);
        the answer's text, its cost added to ``spent[0]``."""
        body = {"messages": list(messages), "max_tokens": max_tokens}
        decision = side_decision(spec, body, "judged sample")
        decision = replace(decision, input_tokens=margin(decision.input_tokens))
        answer = await asyncio.wait_for(self.executor.complete(route, decision, body),
                                        self.cfg.timeout_s)
        spent[0] += answer.cost.usd
        self.metrics.cost.labels(answer.model).inc(answer.cost.usd)
        return grading.answer_text(answer.body)
