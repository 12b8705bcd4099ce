"""The ``judging`` config section. Example::

    judging:
      enabled: true
      share: 0.1                  # of answered requests, by a hash of the request id
      reference_model: gpt-4o     # answers the same prompt again
      judge_model: gpt-4o         # grades the answers
      mode: pairwise              # or absolute (a 0-10 grade, the reference shown as a guide)
      budget_usd: 5.0             # hard cap per UTC day on judging spend
      max_concurrency: 4
      queue_size: 256
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PAIRWISE_PROMPT = (
    "You are an impartial judge. Compare the two answers to the user's question below and "
    "decide which one is better: more correct, complete and helpful. Do not let the order "
    "of the answers, their length or the assistants' names sway you.\n\n"
    "[Question]\n{question}\n[End of Question]\n\n"
    "[Answer A]\n{answer_a}\n[End of Answer A]\n\n"
    "[Answer B]\n{answer_b}\n[End of Answer B]\n\n"
    "Reply with your verdict only: [[A]] if A is better, [[B]] if B is better, [[C]] for a "
    "tie.")
ABSOLUTE_PROMPT = (
    "You are an impartial judge. Rate the answer to the user's question below from 0 "
    "(useless or wrong) to 10 (correct, complete and helpful). A reference answer is shown "
    "as a guide; it may be imperfect.\n\n"
    "[Question]\n{question}\n[End of Question]\n\n"
    "[Reference Answer]\n{reference}\n[End of Reference Answer]\n\n"
    "[The Answer]\n{answer}\n[End of Answer]\n\n"
    "Reply with your rating only, as: Rating: [[<0 to 10>]]")


class JudgingConfig(BaseModel):
    """Judged samples (pointsman.judging): a share of answered requests is answered again by
    a reference model, in the background, and a judge model grades the routed answer
    against it; grades are stored as labels of source `judge` (score in [0, 1]) and the
    calls are charged to their own daily budget, never to the caller's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="Judge a share of live traffic.")
    share: float = Field(default=0.05, ge=0.0, le=1.0, description=(
        "Share of answered requests judged, chosen by a hash of the request id "
        "(deterministic: the same id is always in or out)."))
    reference_model: str | None = Field(default=None, description=(
        "Catalog model that answers each sampled prompt again (required when enabled)."))
    judge_model: str | None = Field(default=None, description=(
        "Catalog model that grades the answers (required when enabled)."))
    mode: Literal["pairwise", "absolute"] = Field(default="pairwise", description=(
        "pairwise: routed vs reference, both orders, win 1 / tie 0.5 / loss 0, averaged; "
        "absolute: the routed answer rated 0-10 (the reference shown as a guide), /10."))
    budget_usd: float = Field(default=1.0, ge=0.0, description=(
        "Hard cap on judging spend (reference and judge calls) per UTC day, per gateway "
        "process; each call reserves its worst case first and is refused past the cap."))
    max_concurrency: int = Field(default=2, ge=1, le=64, description=(
        "Samples judged at the same time (background tasks)."))
    queue_size: int = Field(default=256, ge=1, le=100_000, description=(
        "Samples waiting to be judged; a sample arriving when it is full is dropped and "
        "counted."))
    max_tokens: int = Field(default=1024, ge=1, description=(
        "max_tokens of the reference model's answer (bounds its cost)."))
    judge_max_tokens: int = Field(default=64, ge=1, description=(
        "max_tokens of each judge call (the verdict is a few tokens)."))
    timeout_s: float = Field(default=120.0, gt=0, description=(
        "Seconds each reference or judge call may take."))
    pairwise_prompt: str = Field(default=PAIRWISE_PROMPT, description=(
        "Judge prompt of pairwise mode: {question}, {answer_a}, {answer_b}; the judge "
        "answers [[A]], [[B]] or [[C]] (tie)."))
    absolute_prompt: str = Field(default=ABSOLUTE_PROMPT, description=(
        "Judge prompt of absolute mode: {question}, {answer}, {reference}; the judge "
        "answers Rating: [[0-10]]."))

    @model_validator(mode="after")
    def _complete(self) -> JudgingConfig:
        if self.enabled and not (self.reference_model and self.judge_model):
            raise ValueError("judging.enabled needs reference_model and judge_model")
        for name, fields in (("pairwise_prompt", ("question", "answer_a", "answer_b")),
                             ("absolute_prompt", ("question", "answer", "reference"))):
            text = getattr(self, name)
            missing = [f for f in fields if "{" + f + "}" not in text]
            if missing:
                raise ValueError(f"judging.{name} lacks the placeholder(s) {missing}")
        return self
