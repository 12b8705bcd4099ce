"""The ``cascade`` config section: the quality-check cascade (FrugalGPT) of the gateway.

Example::

    cascade:
      enabled: true
      judge: self_reported        # logprob | self_reported | model | first
      judge_model: gpt-4o-mini    # for judge: model (and first)
      threshold: 0.7              # answers scored below this escalate
      max_steps: 3                # models asked at most, first answer included
      auto: false                 # true: every "auto" request goes through the cascade

A request opts in with the model ``cascade`` (the configured threshold) or
``cascade-<threshold>`` (e.g. ``cascade-0.8``), both listed by ``GET /v1/models``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JudgeName = Literal["logprob", "self_reported", "model", "first"]


class CascadeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    judge: JudgeName = "self_reported"
    judge_model: str | None = None
    judge_timeout_s: float = Field(default=5.0, gt=0, le=120)
    threshold: float = Field(default=0.7, ge=0, le=1)
    max_steps: int = Field(default=3, ge=1, le=10)
    auto: bool = False
    ask_confidence: bool = True  # self_reported/first: ask for a "Confidence:" line, strip it

    @model_validator(mode="after")
    def _judge_model(self) -> CascadeConfig:
        if self.judge == "model" and not self.judge_model:
            raise ValueError("judge_model: required when judge is 'model'")
        return self
