"""The answer-aware judges of the quality-check cascade, the same code as the lab's
cascade replay (:mod:`pointsman.evaluation.cascade_replay`): the normalisers of
:mod:`pointsman.learned.answers` and the features of :mod:`pointsman.learned.answer_judge`.

:class:`AgreementJudge` asks a second cheap model the same question (through the
:class:`~pointsman.learned.cascade.Question`: once per request, in parallel with the first
step when ``parallel``, paid like a step) and scores 1 when the two normalised answers
agree, 0 when they do not. :class:`LearnedJudge` scores the answer with a trained
:class:`~pointsman.learned.answer_judge.AnswerScorer` (``pointsman train --router
answer-judge``), with the second model's answer as its partner when it was trained so.

Neither judges an answer from its second model or a model stronger than it (catalog
quality): the escalated answer is served as the replay serves it; a judge that cannot
judge leaves the answer to the next judge of a list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pointsman.catalog import Catalog
from pointsman.executor import Answer
from pointsman.learned import answers as an
from pointsman.learned.answer_judge import AnswerScorer
from pointsman.learned.cascade import Question, Verdict, answer_text
from pointsman.learned.model_call import ModelCall
from pointsman.types import RouteRequest


@dataclass(frozen=True)
class Partner:
    """The second cheap model a judge asks, and how."""

    model: str
    call: ModelCall
    catalog: Catalog | None  # None (the lab): every other model's answer is judged
    timeout_s: float = 5.0
    parallel: bool = False

    def start(self, question: Question) -> None:
        if self.parallel:
            question.start(self.model, self.call, self.timeout_s)

    def judges(self, answer: Answer) -> bool:
        """Whether an answer from ``answer.model`` is one to compare with the partner's."""
        if answer.model == self.model:
            return False
        if self.catalog is None:
            return True
        if answer.model not in self.catalog:
            return False
        return self.catalog.get(answer.model).quality <= self.catalog.get(self.model).quality

    async def text(self, question: Question) -> tuple[str | None, float]:
        reply, cost = await question.partner(self.model, self.call, self.timeout_s)
        return (None if reply is None else an.without_confidence(answer_text(reply))), cost


class AgreementJudge:
    name = "agreement"

    def __init__(self, partner: Partner, normaliser: str = "auto") -> None:
        self.partner = partner
        self.normalise: Callable[[str], str | None] = an.normaliser(normaliser)

    def start(self, question: Question) -> None:
        self.partner.start(question)

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
        if question is None or not self.partner.judges(answer):
            return Verdict(None)
        mine = self.normalise(an.without_confidence(answer_text(answer)))
        if mine is None:  # nothing to compare: leave it to the next judge
            return Verdict(None)
        theirs, cost = await self.partner.text(question)
        if theirs is None:
            return Verdict(None, cost, (self.partner.model,) if cost else ())
        agreed = an.agree(mine, self.normalise(theirs))
        return Verdict(1.0 if agreed else 0.0, cost, (self.partner.model,))


class LearnedJudge:
    name = "learned"

    def __init__(self, scorer: AnswerScorer, partner: Partner | None = None) -> None:
        self.scorer = scorer
        self.partner = partner

    def start(self, question: Question) -> None:
        if self.partner is not None:
            self.partner.start(question)

    async def judge(self, request: RouteRequest, answer: Answer,
                    question: Question | None = None) -> Verdict:
        text = an.without_confidence(answer_text(answer))
        if self.partner is None:
            return Verdict(self.scorer.score_text(text))
        if question is None or not self.partner.judges(answer):
            return Verdict(None)
        theirs, cost = await self.partner.text(question)
        asked = (self.partner.model,) if theirs is not None or cost else ()
        return Verdict(self.scorer.score_text(text, "" if theirs is None else theirs), cost,
                       asked)
