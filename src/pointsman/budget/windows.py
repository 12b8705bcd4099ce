"""Budget windows: calendar days and months in a time zone, and rolling windows.

A window becomes the ledger counters a budget sums and the counter a call is charged
to. A calendar window is one counter named after the period (``day:2026-11-22``) that
expires after the period. A rolling window of ``S`` seconds is kept as ``BUCKETS``
buckets of ``S / BUCKETS`` seconds: the budget sums the buckets that overlap the last
``S`` seconds, so it is exact to within one bucket (a tenth of the window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

BUCKETS = 10
GRACE_S = 3600.0


@dataclass(frozen=True, slots=True)
class WindowSpan:
    label: str                 # "day", "month" or "rolling-3600s"
    charge: str                # the counter suffix a call is charged to
    counters: tuple[str, ...]  # the counter suffixes the budget sums
    resets_at: float           # epoch seconds when this window's spend stops counting
    expires_at: float          # when the charged counter may be dropped


def calendar(kind: str, now: float, zone: ZoneInfo) -> WindowSpan:
    local = datetime.fromtimestamp(now, zone)
    if kind == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)
        name = f"day:{start:%Y-%m-%d}"
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        name = f"month:{start:%Y-%m}"
    # ``end`` is a wall-clock time in the zone: re-attach the zone so DST is honoured.
    resets = end.replace(tzinfo=None).replace(tzinfo=zone).timestamp()
    return WindowSpan(kind, name, (name,), resets, resets + GRACE_S)


def rolling(seconds: int, now: float) -> WindowSpan:
    width = max(1, math.ceil(seconds / BUCKETS))
    current = int(now // width)
    first = int((now - seconds) // width) + 1
    names = tuple(f"roll{seconds}:{b}" for b in range(first, current + 1))
    resets = (first + 1) * width  # when the oldest bucket leaves the window
    expires = (current + 1) * width + seconds + GRACE_S
    return WindowSpan(f"rolling-{seconds}s", names[-1], names, float(resets), float(expires))


def span(kind: str, seconds: int | None, now: float, zone: ZoneInfo) -> WindowSpan:
    if kind == "rolling":
        assert seconds is not None
        return rolling(seconds, now)
    return calendar(kind, now, zone)


def iso(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")
