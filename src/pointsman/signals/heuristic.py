"""The heuristic complexity signal: keyword groups, length and structure.

Free and fast (tens of microseconds): words are matched against per-group keyword
sets, multi-word phrases by substring over a space-normalised copy of the text.
Every weight and keyword list comes from config.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pointsman.config import HeuristicConfig
from pointsman.signals.base import Signal
from pointsman.tokens import estimate_text_tokens
from pointsman.types import RouteRequest

_PUNCT = str.maketrans(dict.fromkeys("!\"$%&'()*,-./:;<=>?@[\\]^`{|}~\n\t\r", " "))
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    weight: float
    task_type: str
    words: frozenset[str]
    phrases: tuple[tuple[str, frozenset[str]], ...]


Phrases = tuple[tuple[str, frozenset[str]], ...]


def _split_keywords(keywords: list[str]) -> tuple[frozenset[str], Phrases]:
    """Single words, and phrases as (" space-padded phrase ", the set of its words)."""
    words: set[str] = set()
    phrases: list[tuple[str, frozenset[str]]] = []
    for keyword in keywords:
        split = keyword.lower().translate(_PUNCT).split()
        if len(split) > 1:
            phrases.append((f" {' '.join(split)} ", frozenset(split)))
        elif split:
            words.add(split[0])
    return frozenset(words), tuple(phrases)


class HeuristicScorer:
    """Keyword, length and structure scoring; see :class:`HeuristicConfig`."""

    name = "heuristic"

    def __init__(self, config: HeuristicConfig) -> None:
        self._config = config
        self._groups = tuple(
            _Group(name, group.weight, group.task_type, *_split_keywords(group.keywords))
            for name, group in config.groups.items()
        )
        self._constraints = _split_keywords(config.structure.constraint_words)
        self._keep = 1.0 - config.saturation

    @staticmethod
    def _hits(words: frozenset[str], text: str, group_words: frozenset[str],
              phrases: Phrases) -> int:
        hits = len(words & group_words) if group_words else 0
        for phrase, needed in phrases:
            # the substring search runs only when every word of the phrase occurs
            if needed <= words and phrase in text:
                hits += 1
        return hits

    def _keyword_points(self, words: frozenset[str], normal: str) -> tuple[float, dict[str, float],
                                                                         str | None]:
        points = 0.0
        signals: dict[str, float] = {}
        best_type: str | None = None
        best_hits = 0
        for group in self._groups:
            hits = self._hits(words, normal, group.words, group.phrases)
            if not hits:
                continue
            contribution = group.weight * (1.0 - self._keep**hits)
            points += contribution
            signals[group.name] = round(contribution, 2)
            if hits > best_hits:
                best_hits, best_type = hits, group.task_type
        return points, signals, best_type

    def _structure_points(self, request: RouteRequest, text: str, words: frozenset[str],
                          normal: str) -> dict[str, float]:
        s = self._config.structure
        out: dict[str, float] = {}
        if "```" in text:
            out["code_block"] = s.code_block
        items = len(_LIST_ITEM.findall(text)) if "\n" in text else 0
        if items:
            out["list_items"] = min(s.list_max, items * s.list_item)
        questions = text.count("?")
        if questions > 1:
            out["questions"] = min(s.question_max, (questions - 1) * s.extra_question)
        constraints = self._hits(words, normal, *self._constraints)
        if constraints:
            out["constraints"] = min(s.constraint_max, constraints * s.constraint)
        turns = sum(1 for m in request.messages if m.role == "user") - 1
        if turns > 0:
            out["turns"] = min(s.turn_max, turns * s.turn)
        return out

    def _length_points(self, text: str) -> float:
        length = self._config.length
        tokens = estimate_text_tokens(text)
        raw = length.weight * math.log2(1.0 + tokens / length.reference_tokens)
        return min(length.max_points, raw)

    def score(self, request: RouteRequest) -> Signal:
        text = request.last_user_text
        split = text.lower().translate(_PUNCT).split()
        words = frozenset(split)
        normal = f" {' '.join(split)} "
        keyword_points, signals, task_type = self._keyword_points(words, normal)
        structure = self._structure_points(request, text, words, normal)
        length_points = self._length_points(text)
        signals.update(structure)
        signals["length"] = round(length_points, 2)
        total = self._config.base + keyword_points + length_points + sum(structure.values())
        return Signal(max(0.0, min(100.0, total)), signals, task_type or "general")
