"""Sliding latency windows: samples, exact percentiles, the in-memory store.

A window keeps the samples of one key (a model, ``m:<name>``, or a deployment,
``d:<name>``) that are at most ``window.seconds`` old, and at most ``window.max_samples``
of them (the newest). Percentiles are *exact* over that window, with numpy's default
definition (linear interpolation between order statistics; the tests check them against
``numpy.percentile``), computed on read and cached until the window changes. Bounded by
count, a read costs one sort of at most ``max_samples`` rows.

Only successes and timeouts are samples. A timeout counts as a latency of at least its
timeout (``max(total_ms, metadata["timeout_ms"])``), never as missing; other failures
(a 500 that comes back in 5 ms) say nothing about speed and are left to health and the
bandit, or a broken deployment would look fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from pointsman.latency.config import WindowConfig
from pointsman.state import AttemptOutcome
from pointsman.types import LatencyStats

PERCENTILES = (50.0, 95.0, 99.0)


def model_key(model: str) -> str:
    return f"m:{model}"


def deployment_key(deployment: str) -> str:
    return f"d:{deployment}"


class Sample(NamedTuple):
    """One observation: wall-clock time (s), TTFT and total (ms), output tokens/s (NaN when
    unknown) and whether it was a timeout. A row of five floats in the windows."""

    ts: float
    ttft_ms: float
    total_ms: float
    tokens_per_s: float = math.nan
    timed_out: bool = False


def _tokens_per_s(outcome: AttemptOutcome, ttft_ms: float) -> float:
    """Output speed: tokens after the first over the time after the first token; when the
    whole answer came at once (non-streaming), tokens over the total time."""
    tokens, total = outcome.completion_tokens, outcome.total_ms
    if tokens <= 0 or total <= 0:
        return math.nan
    generating = total - ttft_ms
    if tokens > 1 and generating >= 1.0:
        return (tokens - 1) / (generating / 1000.0)
    return tokens / (total / 1000.0)


def sample_of(outcome: AttemptOutcome, now: float) -> Sample | None:
    """The latency sample of one attempt, or None when the attempt says nothing of speed."""
    if outcome.ok:
        ttft = outcome.ttft_ms if outcome.ttft_ms is not None else outcome.total_ms
        return Sample(now, ttft, outcome.total_ms, _tokens_per_s(outcome, ttft))
    if outcome.timed_out:
        timeout_ms = float(outcome.metadata.get("timeout_ms") or 0.0)
        floor = max(outcome.total_ms, timeout_ms)
        ttft = outcome.ttft_ms if outcome.ttft_ms is not None else floor
        return Sample(now, ttft, floor, math.nan, True)
    return None


_QUANTILES = np.array(PERCENTILES) / 100.0


def _linear(ordered: np.ndarray, count: int) -> list[float]:
    """p50 / p95 / p99 of the first ``count`` values of each sorted column, with numpy's
    default (linear) interpolation: one sort for every column instead of a percentile call
    each."""
    position = _QUANTILES * (count - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, count - 1)
    frac = position - low
    out: np.ndarray = ordered[low] + (ordered[high] - ordered[low]) * frac
    return [float(v) for v in out]


def summarize(rows: np.ndarray) -> LatencyStats:
    """Exact p50 / p95 / p99 of TTFT, total latency and tokens/s over ``rows`` (an (n, 5)
    float array of :class:`Sample` fields; timed_out as 0/1)."""
    n = len(rows)
    ordered = np.sort(rows[:, 1:4], axis=0)  # NaN speeds sort last
    t50, t95, t99 = _linear(ordered[:, 0], n)
    a50, a95, a99 = _linear(ordered[:, 1], n)
    known = n - int(np.isnan(rows[:, 3]).sum())
    s50 = s95 = s99 = None
    if known:
        s50, s95, s99 = _linear(ordered[:, 2], known)
    return LatencyStats(t50, t95, a95, n, p99_ttft_ms=t99, p50_total_ms=a50, p99_total_ms=a99,
                        p50_tokens_per_s=s50, p95_tokens_per_s=s95, p99_tokens_per_s=s99,
                        timeouts=int(rows[:, 4].sum()))


@runtime_checkable
class LatencyWindows(Protocol):
    """Where samples go and where the snapshot comes from (memory or Redis)."""

    async def add(self, keys: Sequence[str], sample: Sample) -> None: ...

    async def snapshot(self) -> Mapping[str, LatencyStats]:
        """Stats of every key with at least one live sample."""
        ...


class _Window:
    """A ring buffer of sample rows. The stats are cached until the oldest sample they
    include leaves the window, or a write came and ``refresh_s`` passed since they were
    computed (so a busy window is summarised at most once per ``refresh_s``)."""

    __slots__ = ("cached", "computed_at", "count", "dirty", "head", "rows", "valid_until")

    def __init__(self, capacity: int) -> None:
        self.rows = np.empty((min(capacity, 64), 5))
        self.count = 0
        self.head = 0
        self.cached: LatencyStats | None = None
        self.valid_until = -math.inf
        self.computed_at = -math.inf
        self.dirty = True

    def add(self, sample: Sample, capacity: int) -> None:
        if self.count < capacity:  # filling up (growing the buffer as needed)
            if self.count == len(self.rows):
                grown = np.empty((min(capacity, 2 * self.count), 5))
                grown[: self.count] = self.rows
                self.rows = grown
            self.rows[self.count] = sample
            self.count += 1
        else:  # full: overwrite the oldest
            self.rows[self.head] = sample
            self.head = (self.head + 1) % capacity
        self.dirty = True

    def stats(self, now: float, seconds: float, refresh_s: float) -> LatencyStats | None:
        if now < self.valid_until and (not self.dirty or now - self.computed_at < refresh_s):
            return self.cached
        rows = self.rows[: self.count]
        live = rows[rows[:, 0] >= now - seconds]
        self.dirty, self.computed_at = False, now
        if not len(live):
            self.cached, self.valid_until = None, math.inf
            return None
        self.cached = summarize(live)
        self.valid_until = float(live[:, 0].min()) + seconds
        return self.cached


class MemoryWindows:
    """The in-process windows (one gateway process). ``clock`` gives wall-clock seconds;
    a window that keeps being written is re-summarised at most every ``refresh_s``."""

    def __init__(self, cfg: WindowConfig, clock: Callable[[], float] = time.time,
                 refresh_s: float = 0.0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.refresh_s = refresh_s
        self._windows: dict[str, _Window] = {}

    async def add(self, keys: Sequence[str], sample: Sample) -> None:
        for key in keys:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(self.cfg.max_samples)
            window.add(sample, self.cfg.max_samples)

    async def snapshot(self) -> Mapping[str, LatencyStats]:
        return self.read(self._windows)

    def read(self, keys: Iterable[str]) -> dict[str, LatencyStats]:
        """Stats of the given keys that have live samples."""
        now, seconds, refresh = self.clock(), self.cfg.seconds, self.refresh_s
        out: dict[str, LatencyStats] = {}
        for key in keys:
            window = self._windows.get(key)
            stats = window.stats(now, seconds, refresh) if window is not None else None
            if stats is not None:
                out[key] = stats
        return out
