"""The ``cascade`` config section: the quality-check cascade (FrugalGPT) of the gateway.

Example::

    cascade:
      enabled: true
      judge: [agreement, self_reported]  # one judge, or a list: the first that can judge
      judge_model: gpt-4o-mini    # for judge: model (and first)
      agreement:                  # for judge: agreement
        second_model: gpt-4.1-mini
        normaliser: number        # auto | choice | number | json | text
        parallel: false           # true: ask it alongside the first model
      learned:                    # for judge: learned
        artifact: judge.npz       # `pointsman train --router answer-judge`
      threshold: 0.7              # answers scored below this escalate
      max_steps: 3                # models asked at most, first answer included
      auto: false                 # true: every "auto" request goes through the cascade
      policies:                   # per task type, rule or requested model: its own chain
        - {name: code, when: {task_type: [code]}, chain: [gpt-4.1-mini, gpt-4.1]}

A request opts in with the model ``cascade`` (the configured threshold) or
``cascade-<threshold>`` (e.g. ``cascade-0.8``), both listed by ``GET /v1/models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pointsman.learned.answers import NORMALISERS

JudgeName = Literal["logprob", "self_reported", "model", "first", "agreement", "learned"]
JUDGES: tuple[str, ...] = ("logprob", "self_reported", "model", "first", "agreement",
                           "learned")
Normaliser = Literal["auto", "choice", "number", "json", "text"]
assert tuple(Normaliser.__args__) == NORMALISERS  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgreementConfig(_Strict):
    """The ``agreement`` judge: a second cheap model answers the same request; the answer
    passes (score 1) when the two normalised answers agree, else it escalates (score 0)."""

    second_model: str = Field(description="catalog model asked the same request (cheap; "
                              "its call is paid and budgeted like a step)")
    normaliser: Normaliser = Field(default="auto", description="how answers are compared: "
                                   "a choice letter, the final number, a JSON value, text, "
                                   "or auto (the first of these that reads)")
    parallel: bool = Field(default=False, description="ask the second model alongside the "
                           "first (faster, always paid) instead of only when judging")


class LearnedJudgeConfig(_Strict):
    """The ``learned`` judge: an answer scorer trained by ``pointsman train --router
    answer-judge``; the answer passes when its score reaches the threshold."""

    artifact: str = Field(description="answer-judge artifact (.npz), relative to the "
                          "config file")
    second_model: str | None = Field(default=None, description="the partner model whose "
                                     "answer feeds the agreement features (required when "
                                     "the artifact was trained with a partner)")
    parallel: bool = Field(default=False, description="ask the second model alongside the "
                           "first")


class PolicyWhen(_Strict):
    """What a request must match for a policy to apply (every key given must match)."""

    task_type: list[str] | None = Field(default=None, description="the decision's task "
                                        "types (code, math, ...)")
    rule: list[str] | None = Field(default=None, description="names of the routing rules "
                                   "that decided")
    requested_model: list[str] | None = Field(default=None, description="model names the "
                                              "caller asked for (cascade, cascade-0.8)")


class CascadePolicy(_Strict):
    """A cascade for some requests: its own chain, judge, threshold or step count."""

    name: str | None = Field(default=None, description="named in headers and the log "
                             "(default policy-<index>)")
    when: PolicyWhen = Field(description="which requests it applies to")
    chain: list[str] | None = Field(default=None, min_length=1, description="catalog "
                                    "models, cheap first (default: the routing decision's)")
    judge: JudgeName | list[JudgeName] | None = Field(default=None, description="default: "
                                                      "cascade.judge")
    threshold: float | None = Field(default=None, ge=0, le=1, description="replaces "
                                    "cascade.threshold (a cascade-<t> request keeps its own)")
    max_steps: int | None = Field(default=None, ge=1, le=10, description="default: "
                                  "cascade.max_steps")


class CascadeConfig(_Strict):
    enabled: bool = False
    judge: JudgeName | list[JudgeName] = Field(
        default="self_reported", description="one judge, or a list: the first that can "
        "judge decides")
    judge_model: str | None = None
    judge_timeout_s: float = Field(default=5.0, gt=0, le=120)
    agreement: AgreementConfig | None = Field(default=None, description="settings of the "
                                              "agreement judge")
    learned: LearnedJudgeConfig | None = Field(default=None, description="settings of the "
                                               "learned judge")
    threshold: float = Field(default=0.7, ge=0, le=1)
    max_steps: int = Field(default=3, ge=1, le=10)
    auto: bool = False
    ask_confidence: bool = True  # self_reported/first: ask for a "Confidence:" line, strip it
    policies: list[CascadePolicy] = Field(default_factory=list, description="per task type, "
                                          "rule or requested model, the first that matches "
                                          "replaces the default chain, judge, threshold")

    @model_validator(mode="after")
    def _judge_settings(self) -> CascadeConfig:
        if not judge_names(self.judge) or any(p.judge == [] for p in self.policies):
            raise ValueError("judge: name at least one judge")
        used = self.all_judges()
        if "model" in used and not self.judge_model:
            raise ValueError("judge_model: required when judge is 'model'")
        if "agreement" in used and self.agreement is None:
            raise ValueError("agreement: required when judge is 'agreement' (second_model)")
        if "learned" in used and self.learned is None:
            raise ValueError("learned: required when judge is 'learned' (artifact)")
        return self

    def all_judges(self) -> set[str]:
        """Every judge the default cascade and its policies use."""
        used = set(judge_names(self.judge))
        for policy in self.policies:
            used |= set(judge_names(policy.judge or self.judge))
        return used


def judge_names(judge: str | Sequence[str]) -> tuple[str, ...]:
    """A judge setting as a tuple of names (one name, or the list's in order)."""
    if isinstance(judge, str):
        return (judge,)
    if not judge:
        return ()
    return tuple(judge)
