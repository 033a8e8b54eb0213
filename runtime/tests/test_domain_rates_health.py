"""Rates from increases, estimated queue wait and the health rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.domain.health import HealthThresholds, Status, indicator_status, overall
from runtime.domain.ranges import PRESETS, Resolution, resolution, window
from runtime.domain.rates import estimated_wait, rate_per_second, ratio

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
T = HealthThresholds()


def test_rates_and_ratios() -> None:
    assert rate_per_second(120, 60) == 2
    assert rate_per_second(None, 60) is None
    with pytest.raises(ValueError, match="positive"):
        rate_per_second(1, 0)
    assert ratio(1, 4) == 0.25
    assert ratio(0, 0) is None
    assert ratio(3, 0) == 1.0  # errors and nothing done: all of it failed


def test_estimated_wait() -> None:
    assert estimated_wait(120, 2).seconds == 60
    assert estimated_wait(0, 0).seconds == 0
    assert estimated_wait(None, 2).seconds is None
    assert estimated_wait(5, None).seconds is None
    stalled = estimated_wait(5, 0)
    assert stalled.stalled and stalled.seconds is None


def status(**kwargs):  # type: ignore[no-untyped-def]
    return indicator_status(key="k", name="K", now=NOW, thresholds=T, **kwargs)


def test_health_rules_in_order() -> None:
    assert status(last_reported=None).status is Status.UNKNOWN
    assert status(last_reported=NOW - timedelta(seconds=30)).status is Status.OK
    assert status(last_reported=NOW - timedelta(minutes=3)).status is Status.DEGRADED
    down = status(last_reported=NOW - timedelta(minutes=11))
    assert down.status is Status.DOWN and "Silent for 11 min" in down.reason
    fresh = NOW - timedelta(seconds=5)
    assert status(last_reported=fresh, error_rate=0.04).status is Status.OK
    assert status(last_reported=fresh, error_rate=0.05).status is Status.DEGRADED
    assert status(last_reported=fresh, error_rate=0.5).status is Status.DOWN
    assert status(last_reported=fresh, wait=estimated_wait(600, 1)).status is Status.DEGRADED
    assert status(last_reported=fresh, wait=estimated_wait(3600, 1)).status is Status.DOWN
    assert status(last_reported=fresh, wait=estimated_wait(4, 0)).status is Status.DOWN
    assert status(last_reported=fresh, wait=estimated_wait(4, 1)).status is Status.OK
    # A clock ahead of ours is not "silent for a negative time".
    assert status(last_reported=NOW + timedelta(seconds=20)).status is Status.OK


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="stale_after"):
        HealthThresholds(stale_after=timedelta(minutes=20))
    with pytest.raises(ValueError, match="error_rate"):
        HealthThresholds(error_rate_degraded=0.6)


def test_overall_is_the_worst_known() -> None:
    assert overall([Status.OK, Status.UNKNOWN]) is Status.OK
    assert overall([Status.OK, Status.DEGRADED, Status.DOWN]) is Status.DOWN
    assert overall([Status.UNKNOWN]) is Status.UNKNOWN


def test_ranges_pick_their_resolution_and_align() -> None:
    assert resolution(timedelta(hours=6), timedelta(minutes=1)) is Resolution.RAW
    assert resolution(timedelta(hours=24), timedelta(minutes=15)) is Resolution.MINUTE
    assert resolution(timedelta(days=7), timedelta(minutes=30)) is Resolution.MINUTE
    assert resolution(timedelta(days=7), timedelta(hours=2)) is Resolution.HOUR
    assert resolution(timedelta(days=30), timedelta(minutes=30)) is Resolution.HOUR
    w = window(PRESETS["24h"], NOW)
    assert w.end == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)  # the bucket that holds NOW ends
    assert w.start == w.end - timedelta(hours=24)
    assert len(w.buckets) == 24 and w.buckets[0] == w.start
    assert w.resolution is Resolution.HOUR  # a day reads 24 hour rollups per series, not 1,440
