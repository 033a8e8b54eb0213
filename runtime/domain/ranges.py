"""The time ranges of the health pages (presets in the URL) and which stored resolution answers
them: raw points for ranges up to 6 hours, 1-minute rollups up to 7 days, 1-hour rollups beyond;
a step of an hour or more reads the hour rollups whatever the range (the same sums, 60 times
fewer rows). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Resolution(StrEnum):
    RAW = "raw"
    MINUTE = "minute"
    HOUR = "hour"


RAW_UP_TO = timedelta(hours=6)
MINUTES_UP_TO = timedelta(days=7)


@dataclass(frozen=True)
class RangePreset:
    key: str
    label: str
    span: timedelta
    step: timedelta
    step_label: str


PRESETS = {
    p.key: p
    for p in (
        RangePreset("1h", "1 hour", timedelta(hours=1), timedelta(minutes=1), "minute"),
        RangePreset("24h", "24 hours", timedelta(hours=24), timedelta(hours=1), "hour"),
        RangePreset("7d", "7 days", timedelta(days=7), timedelta(hours=2), "2 hours"),
        RangePreset("30d", "30 days", timedelta(days=30), timedelta(hours=6), "6 hours"),
    )
}
DEFAULT_PRESET = "24h"


def resolution(span: timedelta, step: timedelta) -> Resolution:
    if span <= RAW_UP_TO and step < timedelta(hours=1):
        return Resolution.RAW
    if span <= MINUTES_UP_TO and step < timedelta(hours=1):
        return Resolution.MINUTE
    return Resolution.HOUR


@dataclass(frozen=True)
class Window:
    """A range aligned to its step: ``buckets`` start times from ``start`` (inclusive) to
    ``end`` (exclusive)."""

    start: datetime
    end: datetime
    step: timedelta
    resolution: Resolution

    @property
    def buckets(self) -> list[datetime]:
        count = int((self.end - self.start) / self.step)
        return [self.start + i * self.step for i in range(count)]


def window(preset: RangePreset, now: datetime) -> Window:
    """The preset's range ending with the bucket that holds ``now`` (steps aligned to the Unix
    epoch, so rollup buckets never straddle two steps)."""
    step = preset.step.total_seconds()
    epoch = now.timestamp()
    end_ts = (epoch // step + 1) * step
    end = datetime.fromtimestamp(end_ts, tz=now.tzinfo)
    start = end - preset.span
    return Window(start, end, preset.step, resolution(preset.span, preset.step))


# The health pages' own presets, shown before the shared day ranges (factory_portal.ranges).
HOUR_PRESETS = ("1h", "24h")
# A range of days is drawn in at most this many buckets of the smallest step below that fits;
# steps of an hour or more read the hour rollups (a day per 15 minutes from the minute rollups
# took 170-350 ms p95 on the benchmark tenant).
MAX_BUCKETS = 150
DAY_STEPS = (
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=3),
)


def days_window(start: datetime, end: datetime, now: datetime) -> Window:
    """The instants ``start`` to ``end`` (the first instants of a range's first day and of the
    day after its last, in the page's zone) in buckets from ``start``: the smallest step of
    ``DAY_STEPS`` that needs at most ``MAX_BUCKETS`` buckets (a day: an hour; 7 days: 2 hours;
    30 days: 6 hours; 90 days: a day). A range reaching past ``now`` ends with the bucket
    that holds it (no empty future)."""
    span = end - start
    step = next((s for s in DAY_STEPS if span / s <= MAX_BUCKETS), DAY_STEPS[-1])
    if start <= now < end:
        end = start + (int((now - start) / step) + 1) * step
    elif now < start:  # a range in the future: one empty bucket
        end = start + step
    return Window(start, end, step, resolution(end - start, step))


def step_text(step: timedelta) -> str:
    """``minute``, ``15 minutes``, ``hour``, ``6 hours``, ``day``, ``2 days``."""
    seconds = int(step.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"
