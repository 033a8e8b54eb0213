"""The health pages' windows over ranges of days (runtime.domain.ranges.days_window): capped
buckets, a step per range length, no future buckets. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.domain.ranges import MAX_BUCKETS, Resolution, days_window, step_text

START = datetime(2026, 10, 1, 4, tzinfo=UTC)  # a tenant's midnight, as UTC
LATER = START + timedelta(days=400)


@pytest.mark.parametrize(
    ("days", "step", "resolution"),
    [
        (1, timedelta(hours=1), Resolution.HOUR),
        (7, timedelta(hours=2), Resolution.HOUR),
        (30, timedelta(hours=6), Resolution.HOUR),
        (31, timedelta(hours=6), Resolution.HOUR),
        (90, timedelta(days=1), Resolution.HOUR),
        (366, timedelta(days=3), Resolution.HOUR),
    ],
)
def test_a_range_of_days_is_drawn_in_capped_buckets(days, step, resolution) -> None:
    w = days_window(START, START + timedelta(days=days), LATER)
    assert (w.step, w.resolution) == (step, resolution)
    assert 0 < len(w.buckets) <= MAX_BUCKETS and w.buckets[0] == START


def test_a_range_reaching_past_now_ends_with_the_bucket_that_holds_now() -> None:
    now = START + timedelta(hours=10, minutes=7)
    w = days_window(START, START + timedelta(days=1), now)
    assert w.buckets[-1] == START + timedelta(hours=10) and w.end > now
    future = days_window(START, START + timedelta(days=1), START - timedelta(days=2))
    assert len(future.buckets) == 1


def test_step_text() -> None:
    assert [step_text(timedelta(minutes=m)) for m in (1, 15, 60, 360, 1440, 2880)] == [
        "minute",
        "15 minutes",
        "hour",
        "6 hours",
        "day",
        "2 days",
    ]
