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
