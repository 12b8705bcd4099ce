"""The gateway's quality-check cascade (``cascade`` config, virtual models ``cascade`` and
``cascade-<threshold>``, ``cascade.policies``). Its judges ask models through the
:class:`~pointsman.learned.model_call.CallModel` service the gateway builds over its
executor (on the caller's behalf: its budget pays; fallbacks and health apply), the same
service its scorers are handed.

Nothing here runs on the plain hot path: with ``cascade.enabled: false`` the gateway keeps
``cascade = None`` and never looks at it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pointsman.catalog import Catalog
from pointsman.errors import ConfigError, InputError
from pointsman.executor import Executor
from pointsman.learned.answers import without_confidence
from pointsman.learned.cascade_config import (
    CascadeConfig,
    CascadePolicy,
    LearnedJudgeConfig,
    judge_names,
)
from pointsman.learned.model_call import CallModel
from pointsman.types import Decision

if TYPE_CHECKING:  # the cascade module pulls numpy: imported only when it is switched on
    from pointsman.learned.cascade import AnswerJudge, QualityCascade, Step
    from pointsman.learned.cascade_judges import Partner

CASCADE_MODEL = "cascade"
MAX_THRESHOLDS = 32
CONFIDENCE_PROMPT = ("After your answer, add one last line 'Confidence: <0 to 1>' saying how "
                     "sure you are that the answer is correct and complete.")


@dataclass(frozen=True)
class PolicyCascade:
    """A ``cascade.policies`` entry, built: what it matches and its cascade."""

    name: str
    config: CascadePolicy
    cascade: QualityCascade

    def matches(self, decision: Decision, requested: str) -> bool:
        when = self.config.when
        return ((when.task_type is None or decision.task_type in when.task_type)
                and (when.rule is None or decision.rule in when.rule)
                and (when.requested_model is None or requested in when.requested_model))


@dataclass(frozen=True)
class CascadeSet:
    """The default cascade and the policies that replace it for some requests."""

    default: QualityCascade
    policies: tuple[PolicyCascade, ...] = ()

    def choose(self, decision: Decision, requested: str) -> PolicyCascade | None:
        """The first policy that matches the request (None: the default cascade)."""
        return next((p for p in self.policies if p.matches(decision, requested)), None)


def build_cascade(cfg: CascadeConfig, call_model: CallModel, executor: Executor,
                  catalog: Catalog) -> CascadeSet | None:
    """The configured cascades, or None when ``cascade.enabled`` is false."""
    if not cfg.enabled:
        return None
    from pointsman.learned.cascade import QualityCascade

    if cfg.judge_model is not None and cfg.judge_model not in catalog:
        raise ConfigError(f"cascade.judge_model: unknown model {cfg.judge_model!r}")
    judges = _Judges(cfg, catalog, call_model)
    default = QualityCascade(executor, catalog, judges.build(cfg.judge),
                             threshold=cfg.threshold, max_steps=cfg.max_steps)
    policies = []
    for i, policy in enumerate(cfg.policies):
        name = policy.name or f"policy-{i}"
        for model in policy.chain or ():
            if model not in catalog:
                raise ConfigError(f"cascade.policies.{i}.chain: unknown model {model!r}")
        cascade = QualityCascade(executor, catalog, judges.build(policy.judge or cfg.judge),
                                 threshold=cfg.threshold if policy.threshold is None
                                 else policy.threshold,
                                 max_steps=policy.max_steps or cfg.max_steps)
        policies.append(PolicyCascade(name, policy, cascade))
    return CascadeSet(default, tuple(policies))


class _Judges:
    """Builds the judges a cascade names (an artifact is read once for all)."""

    def __init__(self, cfg: CascadeConfig, catalog: Catalog, call_model: CallModel) -> None:
        self.cfg, self.catalog, self.call_model = cfg, catalog, call_model
        self._scorer: Any = None

    def build(self, judge: str | Sequence[str]) -> AnswerJudge:
        from pointsman.learned.cascade import FirstJudge, LogprobJudge, SelfReportedJudge

        names = judge_names(judge)
        found: list[AnswerJudge] = []
        for name in names:
            if name == "first":
                found += [LogprobJudge(), SelfReportedJudge(),
                          *([self._model()] if self.cfg.judge_model else [])]
            else:
                found.append(self._one(name))
        return found[0] if len(found) == 1 else FirstJudge(found)

    def _one(self, name: str) -> AnswerJudge:
        from pointsman.learned.cascade import LogprobJudge, SelfReportedJudge

        if name == "logprob":
            return LogprobJudge()
        if name == "self_reported":
            return SelfReportedJudge()
        if name == "model":
            return self._model()
        if name == "agreement":
            return self._agreement()
        return self._learned()

    def _model(self) -> AnswerJudge:
        from pointsman.learned.cascade import ModelJudge

        assert self.cfg.judge_model is not None
        call = self.call_model(self.cfg.judge_model, "cascade.judge_model")
        return ModelJudge(call, self.cfg.judge_timeout_s)

    def _partner(self, section: str, model: str, parallel: bool) -> Partner:
        from pointsman.learned.cascade_judges import Partner

        if model not in self.catalog:
            raise ConfigError(f"cascade.{section}.second_model: unknown model {model!r}")
        call = self.call_model(model, f"cascade.{section}.second_model")
        return Partner(model, call, self.catalog, self.cfg.judge_timeout_s, parallel)

    def _agreement(self) -> AnswerJudge:
        from pointsman.learned.cascade_judges import AgreementJudge

        ag = self.cfg.agreement
        assert ag is not None
        return AgreementJudge(self._partner("agreement", ag.second_model, ag.parallel),
                              ag.normaliser)

    def _learned(self) -> AnswerJudge:
        from pointsman.learned.cascade_judges import LearnedJudge

        lc = self.cfg.learned
        assert lc is not None
        if self._scorer is None:
            self._scorer = load_answer_judge(lc)
        scorer, trained_partner = self._scorer
        if (trained_partner is None) != (lc.second_model is None):
            raise ConfigError(
                f"cascade.learned.second_model: the artifact {lc.artifact} was trained "
                + (f"with the answers of {trained_partner!r} as partners: name the catalog "
                   "model that plays that part" if trained_partner else
                   "without a partner's answers: remove second_model"))
        partner = (None if lc.second_model is None else
                   self._partner("learned", lc.second_model, lc.parallel))
        return LearnedJudge(scorer, partner)


def load_answer_judge(lc: LearnedJudgeConfig) -> tuple[Any, str | None]:
    """(the artifact's answer scorer, the partner model it was trained with), or a
    :class:`ConfigError` naming ``cascade.learned.artifact``."""
    from pointsman.artifacts import read_artifact
    from pointsman.errors import ArtifactError
    from pointsman.learned.answer_judge import AnswerJudgeLearner

    try:
        learner = read_artifact(lc.artifact).learner
    except ArtifactError as exc:
        raise ConfigError(f"cascade.learned.artifact: {exc.message}") from None
    if not isinstance(learner, AnswerJudgeLearner) or learner.scorer is None:
        raise ConfigError(f"cascade.learned.artifact: {lc.artifact} holds a "
                          f"{learner.name!r} router, not an answer judge (train one with "
                          "`pointsman train --router answer-judge`)")
    return learner.scorer, learner.partner


def cascade_names(cfg: CascadeConfig) -> list[str]:
    return [CASCADE_MODEL, f"{CASCADE_MODEL}-{cfg.threshold:g}"] if cfg.enabled else []


def cascade_threshold(model: str, cfg: CascadeConfig) -> float | None:
    """The threshold a request asks for by its model name, or None (no cascade)."""
    if model == CASCADE_MODEL or (model == "auto" and cfg.auto):
        return cfg.threshold
    if not model.startswith(CASCADE_MODEL + "-"):
        return None
    try:
        threshold = float(model[len(CASCADE_MODEL) + 1:])
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"virtual model {model!r}: expected {CASCADE_MODEL}-<threshold> with "
                         "a threshold in [0, 1]", "model")
    return threshold


def explicit_threshold(model: str) -> bool:
    """Whether the model name itself gives the threshold (``cascade-<t>``)."""
    return model.startswith(CASCADE_MODEL + "-")


def with_threshold(cascade: QualityCascade, threshold: float,
                   cache: dict[tuple[int, float], QualityCascade]) -> QualityCascade:
    """The cascade with another threshold (same executor and judge), kept in ``cache``."""
    if threshold == cascade.threshold:
        return cascade
    key = (id(cascade), threshold)
    found = cache.get(key)
    if found is None:
        from pointsman.learned.cascade import QualityCascade

        if len(cache) >= MAX_THRESHOLDS:
            cache.pop(next(iter(cache)))
        found = cache[key] = QualityCascade(
            cascade.executor, cascade.catalog, cascade.judge, threshold=threshold,
            max_steps=cascade.max_steps)
    return found


def cascade_body(body: Mapping[str, Any], cfg: CascadeConfig) -> dict[str, Any]:
    """The upstream body of each step: never streamed; asks for what the judge reads."""
    out = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    if cfg.all_judges() & {"logprob", "first"} and "logprobs" not in out:
        out["logprobs"] = True
    if asks_confidence(cfg):
        out["messages"] = [{"role": "system", "content": CONFIDENCE_PROMPT},
                           *(out.get("messages") or [])]
    return out


def asks_confidence(cfg: CascadeConfig) -> bool:
    return cfg.ask_confidence and bool(cfg.all_judges() & {"self_reported", "first"})


def strip_confidence(body: Mapping[str, Any]) -> dict[str, Any]:
    """The answer without the trailing ``Confidence: x`` line the cascade asked for."""
    choices = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            choice = {**choice, "message": {**message,
                                            "content": without_confidence(content)}}
        choices.append(choice)
    return {**body, "choices": choices}


def trail(steps: Sequence[Step]) -> str:
    """``gpt-4o-mini:0.30>gpt-4.1:0.92`` (``-``: not judged; an error code on failure;
    ``gpt-4o-mini+gpt-4.1-mini:0.00``: the judge asked gpt-4.1-mini too)."""
    return ">".join(f"{'+'.join((s.model, *s.asked))}:"
                    f"{s.error or ('-' if s.score is None else f'{s.score:.2f}')}"
                    for s in steps)
