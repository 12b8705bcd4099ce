"""A rolling window of recent complexity scores and its quantiles.

A fixed-size ring holds the newest ``size`` scores in arrival order; a sorted list holds
the same scores so a quantile is one index (``bisect`` keeps it sorted: an insert and a
removal move at most ``size`` pointers, about a microsecond for 2,000 scores). The tier
thresholds are cached until the next score arrives, so a decision reads a dict.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping


class ScoreWindow:
    """The newest ``size`` scores (in [0, 1]) with exact nearest-rank quantiles."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring: list[float] = []
        self._next = 0  # the ring slot the next score overwrites once full
        self._sorted: list[float] = []
        self._cache: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, score: float) -> None:
        if len(self._ring) < self.size:
            self._ring.append(score)
        else:
            old = self._ring[self._next]
            self._ring[self._next] = score
            self._next = (self._next + 1) % self.size
            del self._sorted[bisect_left(self._sorted, old)]
        insort(self._sorted, score)
        self._cache = None

    def load(self, scores: Iterable[float]) -> None:
        """Replace the window with ``scores`` (oldest first): a shared window read back."""
        newest = list(scores)[-self.size:]
        self._ring, self._next = newest, 0
        self._sorted = sorted(newest)
        self._cache = None

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile: the smallest score with at least a ``q``
        fraction of the window below or at it (so ``1 - q`` of it lies at or above)."""
        s = self._sorted
        return s[min(len(s) - 1, int(q * len(s)))]

    def thresholds(self, quantiles: Mapping[str, float]) -> dict[str, float]:
        """Tier → its threshold (the tier's quantile of the window), cached per score."""
        if self._cache is None:
            self._cache = {tier: self.quantile(q) for tier, q in quantiles.items()}
        return self._cache
