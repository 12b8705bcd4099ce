"""The ``experiments`` config section (strict: unknown keys are refused).

.. code-block:: yaml

    experiments:
      - name: cheaper-threshold
        unit: user              # key | user | session: what keeps a caller on one arm
        control: A
        margin: 0.02            # quality non-inferiority margin of the verdict
        arms:
          - {name: A, share: 0.5}                      # the router as configured
          - {name: B, share: 0.5, router: {threshold: 0.8}}
        guardrail: {min_quality: 0.7, min_labels: 30}

An arm's ``router`` overrides keys of the ``router`` section (strategy ``mode``,
``threshold``, ``scorer``, ``scorer_options``, ``candidates`` ...). The first enabled
experiment routes ``model: auto`` requests that carry its unit; the others only report.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmConfig(_Strict):
    name: str = Field(min_length=1, max_length=64)
    share: float = Field(gt=0, le=1)
    router: dict[str, Any] = Field(default_factory=dict)


class GuardrailConfig(_Strict):
    """Stop an arm whose quality is below ``min_quality`` with 95% confidence (the upper
    bound of its interval is under it) once it has ``min_labels`` labels; its traffic goes
    to the control. Checked every ``check_every_s`` and on every report."""

    min_quality: float = Field(ge=0, le=1)
    min_labels: int = Field(default=30, ge=2)
    check_every_s: float = Field(default=30.0, gt=0)


class ExperimentConfig(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    unit: Literal["key", "user", "session"] = "user"
    control: str
    arms: list[ArmConfig] = Field(min_length=2)
    margin: float = Field(default=0.02, ge=0, le=1)
    guardrail: GuardrailConfig | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _arms(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms: duplicate arm names in {names}")
        if self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the arms {names}")
        total = sum(a.share for a in self.arms)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"arms: shares add up to {total:g}, not 1")
        return self
