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

_PUNCT_CHARS = "!\"$%&'()*,-./:;<=>?@[\\]^`{|}~\n\t\r"
_PUNCT = str.maketrans(dict.fromkeys(_PUNCT_CHARS, " "))
# the same folding (lower case, punctuation → space) as a byte table, for ASCII text
_ASCII_FOLD = bytes(32 if chr(b) in _PUNCT_CHARS else ord(chr(b).lower())
                    for b in range(128)) + bytes(range(128, 256))
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    weight: float
    task_type: str
    words: frozenset[str]
    phrases: tuple[tuple[str, frozenset[str]], ...]


Phrases = tuple[tuple[str, frozenset[str]], ...]


def _fold(text: str) -> str:
    """Lower case, punctuation as spaces (a byte table on the ASCII fast path)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    return text.lower().translate(_PUNCT)


class _Spaced:
    """Phrase search in the words joined by single spaces (padded), built lazily.

    A phrase found in the padded folded text is in the joined words too (its words are
    whole and adjacent), so the join is needed only for phrases not found there.
    """

    __slots__ = ("_folded", "_joined", "_padded", "_split")

    def __init__(self, folded: str, split: list[str]) -> None:
        self._folded, self._split = folded, split
        self._padded: str | None = None
        self._joined: str | None = None

    def __contains__(self, phrase: str) -> bool:
        if self._padded is None:
            self._padded = f" {self._folded} "
        if phrase in self._padded:
            return True
        if self._joined is None:
            self._joined = f" {' '.join(self._split)} "
        return phrase in self._joined


def _split_keywords(keywords: list[str]) -> tuple[frozenset[str], Phrases]:
    """Single words, and phrases as (" space-padded phrase ", the set of its words)."""
    words: set[str] = set()
    phrases: list[tuple[str, frozenset[str]]] = []
    for keyword in keywords:
        split = _fold(keyword).split()
        if len(split) > 1:
            phrases.append((f" {' '.join(split)} ", frozenset(split)))
        elif split:
            words.add(split[0])
    return frozenset(words), tuple(phrases)


class _KeywordIndex:
    """Counts, for every keyword list at once, its words and phrases present in a text.

    One set intersection finds the keywords (and words of phrases) present; a phrase is
    searched for only when its first word is present, and the substring search runs only
    when all its words are.
    """

    def __init__(self, lists: list[tuple[frozenset[str], Phrases]]) -> None:
        self.size = len(lists)
        words: dict[str, list[int]] = {}
        phrases: dict[str, list[tuple[int, str, frozenset[str]]]] = {}
        for index, (single, multi) in enumerate(lists):
            for word in single:
                words.setdefault(word, []).append(index)
            for phrase, needed in multi:
                phrases.setdefault(phrase.split()[0], []).append((index, phrase, needed))
        self._words = {w: tuple(i) for w, i in words.items()}
        self._phrases = {w: tuple(p) for w, p in phrases.items()}
        phrase_words = (w for _, multi in lists for _, needed in multi for w in needed)
        self._keys = frozenset(self._words).union(phrase_words)

    def counts(self, split: list[str], text: _Spaced) -> list[int]:
        """Hits per keyword list, in the order of the lists given."""
        hits = [0] * self.size
        words = self._keys.intersection(split)  # holds every word of every phrase present
        for word in words:
            for index in self._words.get(word, ()):
                hits[index] += 1
            for index, phrase, needed in self._phrases.get(word, ()):
                if needed <= words and phrase in text:
                    hits[index] += 1
        return hits


class HeuristicScorer:
    """Keyword, length and structure scoring; see :class:`HeuristicConfig`."""

    name = "heuristic"

    def __init__(self, config: HeuristicConfig) -> None:
        self._config = config
        self._groups = tuple(
            _Group(name, group.weight, group.task_type, *_split_keywords(group.keywords))
            for name, group in config.groups.items()
        )
        # the constraint words are counted as one more list, after the groups
        self._index = _KeywordIndex([(g.words, g.phrases) for g in self._groups]
                                    + [_split_keywords(config.structure.constraint_words)])
        self._keep = 1.0 - config.saturation

    def _keyword_points(self, counts: list[int]) -> tuple[float, dict[str, float], str | None]:
        points = 0.0
        signals: dict[str, float] = {}
        best_type: str | None = None
        best_hits = 0
        for group, hits in zip(self._groups, counts, strict=False):  # last: constraints
            if not hits:
                continue
            contribution = group.weight * (1.0 - self._keep**hits)
            points += contribution
            signals[group.name] = round(contribution, 2)
            if hits > best_hits:
                best_hits, best_type = hits, group.task_type
        return points, signals, best_type

    def _structure_points(self, request: RouteRequest, text: str, constraints: int
                          ) -> dict[str, float]:
        s = self._config.structure
        out: dict[str, float] = {}
        if "`" in text and "```" in text:  # a one-character search is a quick memchr
            out["code_block"] = s.code_block
        items = len(_LIST_ITEM.findall(text)) if "\n" in text else 0
        if items:
            out["list_items"] = min(s.list_max, items * s.list_item)
        first = text.find("?")
        questions = 0 if first < 0 else 1 + text.count("?", first + 1)
        if questions > 1:
            out["questions"] = min(s.question_max, (questions - 1) * s.extra_question)
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
        folded = _fold(text)
        split = folded.split()
        counts = self._index.counts(split, _Spaced(folded, split))
        keyword_points, signals, task_type = self._keyword_points(counts)
        structure = self._structure_points(request, text, counts[-1])
        length_points = self._length_points(text)
        signals.update(structure)
        signals["length"] = round(length_points, 2)
        total = self._config.base + keyword_points + length_points + sum(structure.values())
        return Signal(max(0.0, min(100.0, total)), signals, task_type or "general")
