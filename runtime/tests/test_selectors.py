"""Runtime selectors over rows written straight into the tables: trends by label from raw points,
minute and hour rollups (the same figures whichever answers), counter rates, histogram
percentiles over time, latest gauges, increases and heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from runtime import selectors
from runtime.domain.ranges import RangePreset, Resolution, Window, window
from runtime.models import MetricKind
from runtime.tests.rows import Hist, heartbeat_make, points_write, series_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
HOUR = RangePreset("t", "test", timedelta(hours=1), timedelta(minutes=10), "10 minutes")


def minutes(start: datetime, count: int, every: timedelta = timedelta(minutes=1)):  # type: ignore[no-untyped-def]
    return [start + i * every for i in range(count)]


def as_resolution(w: Window, resolution: Resolution) -> Window:
    return Window(w.start, w.end, w.step, resolution)


def test_gauge_trend_by_label_same_from_raw_minutes_and_hours(alpha) -> None:
    w = window(RangePreset("t", "t", timedelta(hours=2), timedelta(hours=1), "hour"), NOW)
    with schema_context(alpha.schema):
        for queue, depth in (("build", 10.0), ("deploy", 4.0)):
            for priority in ("high", "low"):
                s = series_make("queue_depth", queue_name=queue, priority=priority)
                points_write(s, [(t, depth) for t in minutes(w.start, 240, timedelta(seconds=30))])
        other = series_make("jobs_in_queue", job_type="build")
        points_write(other, [(w.start, 99.0)])
        trends = {
            r: selectors.gauge_trend("queue_depth", as_resolution(w, r), by="queue_name")
            for r in Resolution
        }
    for trend in trends.values():
        assert trend.lines == {"build": [20.0, 20.0], "deploy": [8.0, 8.0]}
    mean = None
    with schema_context(alpha.schema):
        mean = selectors.gauge_trend("queue_depth", w, by="queue_name", combine="mean")
        only_high = selectors.gauge_trend("queue_depth", w, labels={"priority": "high"})
    assert mean.lines["build"] == [10.0, 10.0]
    assert only_high.lines == {"queue_depth": [14.0, 14.0]}


def test_rate_trend_from_increases_and_empty_buckets(alpha) -> None:
    w = window(HOUR, NOW)
    with schema_context(alpha.schema):
        s = series_make("worker_errors_total", MetricKind.SUM, worker_pool="gpu", error_type="oom")
        # 6 errors a minute during the first 10 minutes, nothing after.
        points_write(s, [(t, 6.0) for t in minutes(w.start, 10)])
        trend = selectors.rate_trend(
            "worker_errors_total", w, by="worker_pool", per=timedelta(minutes=1)
        )
        minute_trend = selectors.rate_trend(
            "worker_errors_total", as_resolution(w, Resolution.MINUTE), by="worker_pool"
        )
    assert trend.lines["gpu"][0] == pytest.approx(6.0)
    assert trend.lines["gpu"][1:] == [None] * 5
    assert minute_trend.lines["gpu"][0] == pytest.approx(0.1)  # per second


def test_percentile_trend_interpolates_merged_histograms(alpha) -> None:
    w = window(HOUR, NOW)
    bounds = [1.0, 2.0, 5.0]
    with schema_context(alpha.schema):
        a = series_make("job_duration_seconds", MetricKind.HISTOGRAM, job_type="build")
        b = series_make("job_duration_seconds", MetricKind.HISTOGRAM, job_type="test")
        points_write(a, [(w.start, Hist(bounds, [0, 10, 0, 0], sum=15, min=1.2, max=1.9))])
        points_write(b, [(w.start + timedelta(minutes=1), Hist(bounds, [0, 10, 0, 0], sum=15))])
        trend = selectors.percentile_trend("job_duration_seconds", w)
        hours = window(RangePreset("t", "t", timedelta(hours=2), timedelta(hours=1), "hour"), NOW)
        hourly = selectors.percentile_trend("job_duration_seconds", hours)
        build = selectors.percentile_trend("job_duration_seconds", w, labels={"job_type": "build"})
    # 20 jobs in (1, 2]: the median is halfway, not the bucket's edge 2.0.
    assert trend.lines["p50"][0] == pytest.approx(1.5)
    assert trend.lines["p95"][0] == pytest.approx(1.95)
    assert trend.lines["p50"][1] is None
    assert hourly.lines["p50"][0] == pytest.approx(1.5)
    # The build series alone reported min/max: clamped into them.
    assert build.lines["p99"][0] == pytest.approx(1.9)


def test_latest_gauges_increases_last_reported_and_heartbeats(alpha) -> None:
    with schema_context(alpha.schema):
        for worker, cpu in (("w1", 0.5), ("w2", 0.9)):
            s = series_make("worker_cpu_usage", worker_pool="gpu", worker_id=worker)
            points_write(s, [(NOW - timedelta(minutes=3), 0.1), (NOW - timedelta(minutes=1), cpu)])
        stale = series_make("worker_cpu_usage", worker_pool="cpu", worker_id="w9")
        points_write(stale, [(NOW - timedelta(hours=2), 0.3)])
        errors = series_make("worker_errors_total", MetricKind.SUM, worker_pool="gpu")
        points_write(
            errors, [(NOW - timedelta(minutes=2), 3.0), (NOW - timedelta(minutes=20), 50.0)]
        )
        heartbeat_make("factory-worker", NOW - timedelta(seconds=10))
        since = NOW - timedelta(minutes=10)
        summed = selectors.latest_gauges("worker_cpu_usage", by="worker_pool", since=since)
        mean = selectors.latest_gauges(
            "worker_cpu_usage", by="worker_pool", since=since, combine="mean"
        )
        increase = selectors.increases(
            "worker_errors_total", start=NOW - timedelta(minutes=5), end=NOW, by="worker_pool"
        )
        last = selectors.last_reported(["worker_cpu_usage", "nothing"])
        beats = selectors.heartbeats()
    assert set(summed) == {"gpu"}
    assert summed["gpu"].value == pytest.approx(1.4)
    assert summed["gpu"].time == NOW - timedelta(minutes=1)
    assert mean["gpu"].value == pytest.approx(0.7)
    assert increase == {"gpu": 3.0}
    assert last == NOW - timedelta(minutes=1)
    assert [b.service for b in beats] == ["factory-worker"]


def test_a_tenant_reads_only_its_own_schema(alpha, beta) -> None:
    w = window(HOUR, NOW)
    with schema_context(beta.schema):
        points_write(series_make("queue_depth", queue_name="beta-q"), [(w.start, 5.0)])
    with schema_context("public"):
        points_write(series_make("queue_depth", queue_name="platform-q"), [(w.start, 7.0)])
    with schema_context(alpha.schema):
        assert selectors.gauge_trend("queue_depth", w, by="queue_name").lines == {}
    with schema_context("public"):
        assert list(selectors.gauge_trend("queue_depth", w, by="queue_name").lines) == [
            "platform-q"
        ]


def test_cpu_sent_as_a_counter_reads_as_cores_busy_per_worker(alpha) -> None:
    """``worker_cpu_usage`` as the seed lists it (a counter of CPU seconds): its level is the
    rate per second, averaged over a pool's workers; as a gauge it is the gauge's average."""
    w = window(HOUR, NOW)
    with schema_context(alpha.schema):
        for worker, seconds_a_minute in (("a/w1", 30.0), ("a/w2", 90.0)):
            s = series_make("worker_cpu_usage", MetricKind.SUM, worker_pool="a", worker_id=worker)
            points_write(s, [(t, seconds_a_minute) for t in minutes(w.start, 70)])
        gauge = series_make("worker_memory_usage", worker_pool="a", worker_id="a/w1")
        points_write(gauge, [(t, 2e9) for t in minutes(w.start, 70)])
        cpu = selectors.level_trend("worker_cpu_usage", w, by="worker_pool")
        memory = selectors.level_trend("worker_memory_usage", w, by="worker_pool")
        now = selectors.latest_levels(
            "worker_cpu_usage", by="worker_pool", since=NOW - timedelta(minutes=10), now=NOW
        )
    # (0.5 + 1.5 cores) / 2 workers in every full 10-minute bucket.
    assert cpu.lines["a"][0] == pytest.approx(1.0)
    assert memory.lines["a"][0] == pytest.approx(2e9)
    assert now["a"].value == pytest.approx(1.0, rel=0.15)
