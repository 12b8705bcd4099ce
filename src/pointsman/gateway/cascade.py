"""The gateway's side of the learned features that call models: the quality-check cascade
(``cascade`` config, virtual models ``cascade`` and ``cascade-<threshold>``) and the
LLM-as-router scorers (``router.scorer: llm | hybrid``), both asking models through the
gateway's executor on the caller's behalf (its budget pays; fallbacks and health apply).

Nothing here runs on the plain hot path: with ``cascade.enabled: false`` the gateway keeps
``cascade = None`` and never looks at it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pointsman.catalog import Catalog
from pointsman.config import PointsmanConfig
from pointsman.errors import ConfigError, InputError
from pointsman.executor import Executor
from pointsman.learned.cascade_config import CascadeConfig
from pointsman.learned.model_call import ExecutorCall, ModelCall
from pointsman.signals.base import ComplexityScorer

if TYPE_CHECKING:  # the cascade module pulls numpy: imported only when it is switched on
    from pointsman.learned.cascade import AnswerJudge, QualityCascade, Step

CASCADE_MODEL = "cascade"
MAX_THRESHOLDS = 32
CONFIDENCE_PROMPT = ("After your answer, add one last line 'Confidence: <0 to 1>' saying how "
                     "sure you are that the answer is correct and complete.")
_CONFIDENCE_LINE = re.compile(
    r"\n?[ \t]*[*_]*confidence[*_]*\s*[:=]\s*[*_]*\d{1,3}(?:\.\d+)?\s*%?[*_]*[ \t.]*\Z",
    re.IGNORECASE)


def gateway_scorer(config: PointsmanConfig, executor: Executor, name: str | None = None,
                   options: Mapping[str, Any] | None = None) -> ComplexityScorer | None:
    """The ``llm`` or ``hybrid`` scorer, its model asked through the gateway's executor
    (the caller's budget pays for it); None for the others (the router then builds its
    scorer itself)."""
    name = name or config.router.scorer
    opts = config.router.scorer_options if options is None else options
    caller = executor_caller(executor, "llm-as-router")
    if name == "llm":
        from pointsman.learned.register import llm_scorer

        return llm_scorer(config, opts, caller=caller)
    if name == "hybrid":
        from pointsman.learned.hybrid import hybrid_scorer

        return hybrid_scorer(config, opts, caller=caller)
    return None


def executor_caller(executor: Executor, reason: str) -> Callable[[str], ModelCall]:
    """Catalog model name → a call through ``executor`` (see learned.model_call)."""
    def make(model: str) -> ModelCall:
        return ExecutorCall(executor, executor.catalog.get(model), reason)
    return make


def build_cascade(cfg: CascadeConfig, executor: Executor,
                  catalog: Catalog) -> QualityCascade | None:
    """The configured cascade, or None when ``cascade.enabled`` is false."""
    if not cfg.enabled:
        return None
    from pointsman.learned.cascade import QualityCascade
    if cfg.judge_model is not None and cfg.judge_model not in catalog:
        raise ConfigError(f"cascade.judge_model: unknown model {cfg.judge_model!r}")
    return QualityCascade(executor, catalog, _judge(cfg, catalog, executor),
                          threshold=cfg.threshold, max_steps=cfg.max_steps)


def _judge(cfg: CascadeConfig, catalog: Catalog, executor: Executor) -> AnswerJudge:
    from pointsman.learned.cascade import FirstJudge, LogprobJudge, ModelJudge, SelfReportedJudge

    model = (ModelJudge(executor_caller(executor, "cascade judge")(cfg.judge_model),
                        cfg.judge_timeout_s) if cfg.judge_model else None)
    if cfg.judge == "logprob":
        return LogprobJudge()
    if cfg.judge == "self_reported":
        return SelfReportedJudge()
    if cfg.judge == "model":
        assert model is not None
        return model
    judges: list[AnswerJudge] = [LogprobJudge(), SelfReportedJudge()]
    return FirstJudge([*judges, model] if model is not None else judges)


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


def with_threshold(cascade: QualityCascade, threshold: float,
                   cache: dict[float, QualityCascade]) -> QualityCascade:
    """The cascade with another threshold (same executor and judge), kept in ``cache``."""
    if threshold == cascade.threshold:
        return cascade
    found = cache.get(threshold)
    if found is None:
        from pointsman.learned.cascade import QualityCascade

        if len(cache) >= MAX_THRESHOLDS:
            cache.pop(next(iter(cache)))
        found = cache[threshold] = QualityCascade(
            cascade.executor, cascade.catalog, cascade.judge, threshold=threshold,
            max_steps=cascade.max_steps)
    return found


def cascade_body(body: Mapping[str, Any], cfg: CascadeConfig) -> dict[str, Any]:
    """The upstream body of each step: never streamed; asks for what the judge reads."""
    out = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    if cfg.judge in ("logprob", "first") and "logprobs" not in out:
        out["logprobs"] = True
    if asks_confidence(cfg):
        out["messages"] = [{"role": "system", "content": CONFIDENCE_PROMPT},
                           *(out.get("messages") or [])]
    return out


def asks_confidence(cfg: CascadeConfig) -> bool:
    return cfg.ask_confidence and cfg.judge in ("self_reported", "first")


def strip_confidence(body: Mapping[str, Any]) -> dict[str, Any]:
    """The answer without the trailing ``Confidence: x`` line the cascade asked for."""
    choices = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            choice = {**choice, "message": {**message,
                                            "content": _CONFIDENCE_LINE.sub("", content)}}
        choices.append(choice)
    return {**body, "choices": choices}


def trail(steps: Sequence[Step]) -> str:
    """``gpt-4o-mini:0.30>gpt-4.1:0.92`` (``-``: not judged; an error code on failure)."""
    return ">".join(f"{s.model}:{s.error or ('-' if s.score is None else f'{s.score:.2f}')}"
                    for s in steps)
