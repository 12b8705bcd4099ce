"""Every router, cascade and judge name the lab, ``pointsman route`` and the gateway accept,
with what kind of thing it is and what it needs (``pointsman routers``).

Built-in names carry a description here; a plugin's learner or scorer is listed with the
first line of its factory's docstring. Rules come from the config (``rules[].name``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pointsman.config import PointsmanConfig
from pointsman.registry import learners, scorers


@dataclass(frozen=True)
class RouterInfo:
    name: str
    kind: str  # baseline | heuristic | learned | semantic | llm | cascade | judge | rule | virtual
    accepted_by: tuple[str, ...]  # eval | route | gateway | train | cascade.judge
    needs_answers: bool
    needs_torch: bool
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accepted_by": list(self.accepted_by)}


_EVAL, _ALL = ("eval",), ("eval", "route", "gateway")
_TRAINED = ("eval", "route", "gateway", "train")
_JUDGE = ("cascade.judge",)


def _info(name: str, kind: str, by: tuple[str, ...], description: str, *,
          answers: bool = False, torch: bool = False) -> RouterInfo:
    return RouterInfo(name, kind, by, answers, torch, description)


BUILTIN: tuple[RouterInfo, ...] = (
    _info("random", "baseline", _EVAL, "seeded random routing scores (the lab's floor)"),
    _info("always-weak", "baseline", _EVAL, "always the cheapest model"),
    _info("always-strong", "baseline", _EVAL, "always the best model"),
    _info("heuristic", "heuristic", _ALL,
          "prompt features (length, code, maths, reasoning words) to a 0-100 complexity"),
    _info("knn", "learned", _TRAINED, "k nearest training prompts' outcomes (embeddings)"),
    _info("logreg", "learned", _TRAINED, "per-model logistic regression on embeddings"),
    _info("mf", "learned", _TRAINED, "matrix factorisation of prompt × model quality"),
    _info("ensemble", "learned", _TRAINED, "average of the learned routers' predictions"),
    _info("finetune", "learned", _TRAINED,
          "a fine-tuned BERT encoder (training needs torch; inference is numpy)", torch=True),
    _info("semantic", "semantic", _ALL, "nearest configured route by example utterances"),
    _info("llm", "llm", _ALL, "an LLM classifies the prompt's difficulty (calls a model)"),
    _info("hybrid", "llm", _ALL,
          "heuristic when sure, then an embedding router, then the LLM-as-router"),
    _info("cascade-agreement", "cascade", _EVAL, "replayed cascade: accept a cheap answer "
          "when two cheap models' normalised answers agree", answers=True),
    _info("cascade-learned", "cascade", _EVAL, "replayed cascade: accept a cheap answer "
          "when the learned answer judge scores it high enough", answers=True),
    _info("answer-judge", "judge", ("train",), "learns P(answer right) from answer "
          "features; its artifact is the gateway cascade's judge 'learned'", answers=True),
    _info("cascade", "cascade", ("gateway",),
          "virtual model: the quality-check cascade at cascade.threshold"),
    _info("cascade-<threshold>", "cascade", ("gateway",),
          "virtual model: the quality-check cascade at this threshold"),
    _info("router-<scorer>-<threshold>", "virtual", ("gateway",),
          "virtual model: threshold routing with that scorer, strong vs weak model"),
    _info("logprob", "judge", _JUDGE, "mean token probability of the answer"),
    _info("self_reported", "judge", _JUDGE, "the confidence the model states in its answer"),
    _info("model", "judge", _JUDGE, "a judge model grades the answer 0-10 (calls a model)"),
    _info("first", "judge", _JUDGE, "logprob, else self_reported, else the judge model"),
    _info("agreement", "judge", _JUDGE, "a second cheap model answers too; accept when the "
          "normalised answers agree (calls a model)"),
    _info("learned", "judge", _JUDGE, "an answer-judge artifact scores the answer"),
)


def router_list(config: PointsmanConfig) -> list[RouterInfo]:
    """The built-in names, then plugins' learners and scorers, then the config's rules."""
    out = list(BUILTIN)
    known = {r.name for r in out}
    for name in learners.names():
        if name not in known:
            known.add(name)
            by = ("eval", "train", *(("route", "gateway") if name in scorers else ()))
            out.append(_info(name, "learned", by, _doc(learners.get(name))))
    for name in scorers.names():
        if name not in known:
            known.add(name)
            out.append(_info(name, "scorer", _ALL, _doc(scorers.get(name))))
    out += [_info(rule.name, "rule", ("route", "gateway"), _rule_text(rule.model_dump()))
            for rule in config.rules]
    return out


def _doc(factory: Callable[..., Any]) -> str:
    doc = (factory.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else "(a plugin; no description)"


def _rule_text(rule: dict[str, Any]) -> str:
    then = ", ".join(f"{k} {v}" for k, v in (rule.get("then") or {}).items()
                     if v and v != "score")
    return f"config rule → {then}" if then else "config rule"
