"""Cascade replay: what a cascade would have answered and paid, over outcome data with
answers (RouterBench ``<model>|model_response``, RouteLLM ``<model>_response``).

A cascade policy calls a cheap model ``first``; it accepts that answer when its judge
score reaches ``alone``; otherwise it calls a second cheap model and accepts the first
answer when the two agree (``paired = AGREE``) or when the judge score *with* the second
answer reaches ``paired``; otherwise it calls ``escalate`` and serves that answer. Every
call a policy makes is paid (the cost of each model called, not only the one served), and
calls per request are counted. Single models are policies too.

Judges: ``agreement`` (accept exactly when the normalised answers agree, by the option
``normaliser``: ``auto`` by default, as the gateway's judge; no model is trained) and
``learned`` (:class:`~pointsman.learned.answer_judge.AnswerScorer`, fitted on the training
part; the scores it gives the training rows, used to choose a policy,
are cross-fitted on inner folds so the choice sees the scores of unseen answers).

Policy choice, on the training part only: for each task (the table's groups with at least
:data:`MIN_GROUP` training rows; the others share one policy), for every λ of a fixed grid,
the candidate maximising ``mean quality − λ · mean cost / (the dearest model's mean
cost)`` (ties: the cheaper). The test rows of a task are then replayed with its policy.
Each λ is one operating point of the curve; the test labels are never read here (the lab
scores what a policy served and called).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np
import numpy.typing as npt

from pointsman.errors import ConfigError, DataError
from pointsman.evaluation import sweep as sw
from pointsman.evaluation.pareto import column_means, filled
from pointsman.learned import answers as an
from pointsman.learned.answer_judge import AnswerScorer, feature_matrix
from pointsman.learning import FloatArray, OutcomeTable

AGREE = -1.0
NEVER = math.inf
THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
LAMBDAS: FloatArray = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 121), [np.inf]])
MIN_GROUP = 20
JUDGES: tuple[str, ...] = ("agreement", "learned")
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Policy:
    """One cascade (see the module docstring); ``second is None``: no partner call."""

    first: int
    second: int | None = None
    escalate: int | None = None
    alone: float = NEVER
    paired: float = AGREE

    def describe(self, models: Sequence[str]) -> str:
        if self.escalate is None:
            return models[self.first]
        names = [models[self.first]]
        if self.second is not None:
            names.append(models[self.second])
        return " → ".join([*names, models[self.escalate]])


@dataclass
class Signals:
    """What policies are decided on, for one table: judge scores and agreements."""

    alone: dict[int, FloatArray]
    paired: dict[tuple[int, int], FloatArray]
    agree: dict[tuple[int, int], BoolArray]


def execute(policy: Policy, sig: Signals, n: int, m: int) -> tuple[IntArray, BoolArray]:
    """(served model per row, models called per row) when ``policy`` handles each row."""
    called = np.zeros((n, m), dtype=bool)
    called[:, policy.first] = True
    served = np.full(n, policy.first, dtype=np.int64)
    if policy.escalate is None:
        return served, called
    need = ~(sig.alone[policy.first] >= policy.alone) if policy.alone < NEVER \
        else np.ones(n, dtype=bool)
    if policy.second is not None:
        pair = (policy.first, policy.second)
        called[:, policy.second] = need
        if policy.paired == AGREE:
            need = need & ~sig.agree[pair]
        elif policy.paired < NEVER:
            need = need & ~(sig.paired[pair] >= policy.paired)
    called[:, policy.escalate] |= need
    served[need] = policy.escalate
    return served, called


@dataclass(frozen=True)
class Replay:
    """A cascade's operating points on a test table (one per λ)."""

    params: tuple[float, ...]
    served: IntArray            # points × n
    called: BoolArray           # points × n × m
    policies: tuple[dict[str, str], ...]  # per point: task → chain


class CascadeRouter:
    """The lab router ``cascade-agreement`` / ``cascade-learned`` (module docstring)."""

    trainable = True

    def __init__(self, judge: str, options: Mapping[str, Any]) -> None:
        known = {"cheap_models", "per_task", "min_group", "inner_folds", "normaliser"}
        unknown = set(options) - known
        if unknown:
            raise ConfigError(f"router cascade-{judge}: unknown options {sorted(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        self.name = f"cascade-{judge}"
        self.judge = judge
        self.cheap_count = int(options.get("cheap_models", 5))
        self.per_task = bool(options.get("per_task", True))
        self.min_group = int(options.get("min_group", MIN_GROUP))
        self.inner = int(options.get("inner_folds", 5))
        try:  # how answers are compared: the gateway's agreement judge uses the same
            self.normalise = an.normaliser(str(options.get("normaliser", "auto")))
        except ValueError as exc:
            raise ConfigError(f"router cascade-{judge}: {exc}") from None
        self._train: OutcomeTable | None = None

    def fit(self, train: OutcomeTable) -> None:
        _need_answers(train, self.name)
        self._train = train

    def predict(self, test: OutcomeTable, roles: Any) -> Any:
        from pointsman.evaluation.routers import Prediction

        if self._train is None:
            raise DataError(f"router {self.name} was not fitted")
        _need_answers(test, self.name)
        if roles is not None:
            return Prediction(score=self._two_model_score(test, roles.weak, roles.strong))
        return Prediction(replay=self.replay(self._train, test))

    # -- two models: the judge's doubt about the weak answer is the routing score -----------
    def _two_model_score(self, test: OutcomeTable, weak: int, strong: int) -> FloatArray:
        train = self._train
        assert train is not None and train.answers is not None and test.answers is not None
        if self.judge == "agreement":
            raise DataError("cascade-agreement needs two cheap models besides the strong one; "
                            "with two models use cascade-learned")
        scorer = AnswerScorer.fit(feature_matrix(list(train.answers[:, weak])),
                                  filled(train.quality)[:, weak])
        return 1.0 - scorer.score(feature_matrix(list(test.answers[:, weak])))

    # -- many models ------------------------------------------------------------------
    def replay(self, train: OutcomeTable, test: OutcomeTable) -> Replay:
        cheap, ladder = self._models(train)
        candidates = self._candidates(cheap, ladder)
        train_sig = self._signals(train, train, cheap, inner=True)
        test_sig = self._signals(train, test, cheap, inner=False)
        keys, t_groups = self._groups(train)
        table = _candidate_table(candidates, train_sig, train, t_groups, len(keys))
        scale = float(np.nanmax(column_means(train.cost))) if train.cost is not None else 1.0
        return _replay_points(candidates, table, scale, keys, test, test_sig)

    def _models(self, train: OutcomeTable) -> tuple[list[int], list[int]]:
        """Cheap models (first and second calls: the training Pareto ladders' models below
        the best, then the best of the other cheaper models) and escalation targets."""
        if train.cost is None:
            raise DataError(f"router {self.name} needs per-call costs (many-model data)")
        ladders = [sw.ladder(train)]
        if self.per_task and train.groups:
            for g in sorted(set(train.groups)):
                rows = [i for i, x in enumerate(train.groups) if x == g]
                if len(rows) >= self.min_group:
                    ladders.append(sw.ladder(train.subset(rows)))
        ladder = sorted({int(j) for lad in ladders for j in lad},
                        key=lambda j: float(column_means(train.cost)[j]))  # type: ignore[arg-type]
        best = int(ladders[0][-1])
        cost, quality = column_means(train.cost), column_means(train.quality)
        cheaper = sorted((j for j in range(len(train.models)) if cost[j] < cost[best]),
                         key=lambda j: -float(np.nan_to_num(quality[j], nan=-1.0)))
        cheap = [j for j in ladder if j != best]
        cheap = [*cheap, *(j for j in cheaper if j not in cheap)][: self.cheap_count]
        return cheap, ladder

    def _candidates(self, cheap: list[int], ladder: list[int]) -> list[Policy]:
        out = [Policy(j) for j in ladder]
        learned = self.judge == "learned"
        alone = (NEVER, *THRESHOLDS) if learned else (NEVER,)
        paired = (AGREE, NEVER, *THRESHOLDS) if learned else (AGREE,)
        for a in cheap:
            for e in ladder:
                if e == a:
                    continue
                if learned:
                    out += [Policy(a, None, e, t) for t in THRESHOLDS]
                for b in cheap:
                    if b in (a, e):
                        continue
                    out += [Policy(a, b, e, t1, t2) for t1 in alone for t2 in paired
                            if not (t1 == NEVER and t2 == NEVER)]
        return out

    def _signals(self, train: OutcomeTable, table: OutcomeTable, cheap: list[int],
                 inner: bool) -> Signals:
        assert train.answers is not None and table.answers is not None
        norms = {j: [self.normalise(str(x)) for x in table.answers[:, j]] for j in cheap}
        agree = {(a, b): np.array([an.agree(x, y) for x, y in zip(norms[a], norms[b],
                                                                    strict=True)])
                 for a, b in permutations(cheap, 2)}
        sig = Signals({}, {}, agree)
        if self.judge != "learned":
            return sig
        right = filled(train.quality)
        for a in cheap:
            sig.alone[a] = self._scores(train, table, a, None, right[:, a], inner)
            for b in cheap:
                if b != a:
                    sig.paired[(a, b)] = self._scores(train, table, a, b, right[:, a], inner)
        return sig

    def _scores(self, train: OutcomeTable, table: OutcomeTable, a: int, b: int | None,
                right: FloatArray, inner: bool) -> FloatArray:
        assert train.answers is not None and table.answers is not None
        x_train = _features(train.answers, a, b)
        if not inner:
            return AnswerScorer.fit(x_train, right).score(_features(table.answers, a, b))
        out = np.empty(len(train))
        order = np.random.default_rng(0).permutation(len(train))
        for held in np.array_split(order, max(2, self.inner)):
            keep = np.setdiff1d(order, held)
            out[held] = AnswerScorer.fit(x_train[keep], right[keep]).score(x_train[held])
        return out

    def _groups(self, train: OutcomeTable) -> tuple[list[str], IntArray]:
        """Task keys ('' = every other task) and each training row's key index."""
        if not (self.per_task and train.groups):
            return [""], np.zeros(len(train), dtype=np.int64)
        counts: dict[str, int] = {}
        for g in train.groups:
            counts[g] = counts.get(g, 0) + 1
        keys = ["", *sorted(g for g, c in counts.items() if c >= self.min_group)]
        index = {k: i for i, k in enumerate(keys)}
        return keys, np.array([index.get(g, 0) for g in train.groups], dtype=np.int64)


def _features(texts: npt.NDArray[np.object_], a: int, b: int | None) -> FloatArray:
    return feature_matrix([str(x) for x in texts[:, a]],
                          None if b is None else [str(x) for x in texts[:, b]])


def _need_answers(table: OutcomeTable, name: str) -> None:
    if table.answers is None:
        raise DataError(f"router {name} replays answers; this data has none (RouterBench "
                        "'<model>|model_response' or RouteLLM '<model>_response' columns)")


@dataclass(frozen=True)
class CandidateTable:
    """Per candidate and task: training mean quality and cost (candidates × keys)."""

    quality: FloatArray
    cost: FloatArray
    pooled_quality: FloatArray  # per candidate over every training row
    pooled_cost: FloatArray


def _candidate_table(candidates: Sequence[Policy], sig: Signals, train: OutcomeTable,
                     groups: IntArray, keys: int) -> CandidateTable:
    assert train.cost is not None
    q, c = filled(train.quality), filled(train.cost)
    n, m = q.shape
    rows = np.arange(n)
    counts = np.maximum(np.bincount(groups, minlength=keys), 1)
    quality = np.empty((len(candidates), keys))
    cost = np.empty((len(candidates), keys))
    pooled_q = np.empty(len(candidates))
    pooled_c = np.empty(len(candidates))
    for k, policy in enumerate(candidates):
        served, called = execute(policy, sig, n, m)
        row_q = q[rows, served]
        row_c = (c * called).sum(axis=1)
        quality[k] = np.bincount(groups, row_q, minlength=keys) / counts
        cost[k] = np.bincount(groups, row_c, minlength=keys) / counts
        pooled_q[k], pooled_c[k] = row_q.mean(), row_c.mean()
    return CandidateTable(quality, cost, pooled_q, pooled_c)


def _choose(table: CandidateTable, lam: float, scale: float) -> list[int]:
    """Per key, the candidate of best ``quality − λ·cost/scale`` (ties: cheaper); key 0
    (the tasks too small for their own policy) uses the pooled training rows."""
    out = []
    for key in range(table.quality.shape[1]):
        q = table.pooled_quality if key == 0 else table.quality[:, key]
        c = table.pooled_cost if key == 0 else table.cost[:, key]
        if np.isinf(lam):
            out.append(int(np.lexsort((-q, c))[0]))
            continue
        utility = q - lam * c / scale
        out.append(int(np.lexsort((c, -np.round(utility, 12)))[0]))
    return out


def _replay_points(candidates: Sequence[Policy], table: CandidateTable, scale: float,
                   keys: list[str], test: OutcomeTable, sig: Signals) -> Replay:
    n, m = len(test), len(test.models)
    index = {k: i for i, k in enumerate(keys)}
    test_keys = np.array([index.get(g, 0) for g in test.groups] if test.groups and
                         len(keys) > 1 else [0] * n, dtype=np.int64)
    served = np.empty((len(LAMBDAS), n), dtype=np.int64)
    called = np.empty((len(LAMBDAS), n, m), dtype=bool)
    policies = []
    for p, lam in enumerate(LAMBDAS):
        chosen = _choose(table, float(lam), scale)
        for key, k in enumerate(chosen):
            rows = test_keys == key
            s, c = execute(candidates[k], sig, n, m)
            served[p, rows], called[p, rows] = s[rows], c[rows]
        policies.append({(keys[key] or "*"): _label(candidates[k], test.models)
                         for key, k in enumerate(chosen)})
    return Replay(tuple(float(x) for x in LAMBDAS), served, called, tuple(policies))


def _label(policy: Policy, models: Sequence[str]) -> str:
    chain = policy.describe(models)
    if policy.escalate is None:
        return chain
    alone = "" if policy.alone == NEVER else f" alone≥{policy.alone:g}"
    paired = "" if policy.second is None else (
        " agree" if policy.paired == AGREE else
        "" if policy.paired == NEVER else f" paired≥{policy.paired:g}")
    return chain + alone + paired
