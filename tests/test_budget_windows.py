"""Budget windows: calendar days and months in an IANA zone (DST included), rolling."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pointsman.budget import windows

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_day_window_follows_the_zone_and_dst() -> None:
    # 2026-03-29 is 23 hours long in Paris (clocks go forward).
    span = windows.calendar("day", at("2026-03-29T12:00:00+02:00"), PARIS)
    assert span.charge == "day:2026-03-29"
    assert windows.iso(span.resets_at, PARIS) == "2026-03-30T00:00:00+02:00"
    late = windows.calendar("day", at("2026-03-28T23:30:00+00:00"), PARIS)
    assert late.charge == "day:2026-03-29"  # already the 29th in Paris


def test_month_window_resets_on_the_first() -> None:
    span = windows.calendar("month", at("2026-12-31T23:59:00+01:00"), PARIS)
    assert span.charge == "month:2026-12"
    assert windows.iso(span.resets_at, PARIS) == "2027-01-01T00:00:00+01:00"


def test_rolling_window_sums_the_buckets_of_the_last_seconds() -> None:
    now = 1_000_000.0
    span = windows.rolling(3600, now)
    assert len(span.counters) == windows.BUCKETS
    assert span.charge == span.counters[-1]
    later = windows.rolling(3600, now + 360)
    assert later.counters[:-1] == span.counters[1:]  # the oldest bucket left the window
    assert span.resets_at <= now + 360
