"""Each rule's samples from real rows: a tenant's runs, series, heartbeats and AI cost in its
schema, the platform's series in public; only the window counts, too little data gives no
sample, and nothing of another schema is read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.oncall.domain.rules import PLATFORM, RULES, TENANT
from alerts.oncall.services.conditions import LABEL_SETS_MAX, samples
from runtime.models import MetricKind
from runtime.tests.rows import Hist, heartbeat_make, points_write, series_make
from tests.support import llm_spend, run_finished

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 14, 25, tzinfo=UTC)
FAILURES = RULES["factory_run_failure_rate_high"]
QUEUE = RULES["factory_queue_depth_high"]
WORKERS = RULES["factory_worker_error_rate_spike"]
COST = RULES["factory_ai_cost_anomaly"]
CONTROL = RULES["factory_control_plane_down"]


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_run_failure_rate_counts_the_tenants_runs_finished_in_the_window(alpha, beta):
    with schema_context(alpha.schema):
        for n in range(8):
            run_finished(f"ok-{n}", "Succeeded", ago(600), 8)  # finished 2 min ago
        for n in range(2):
            run_finished(f"bad-{n}", "Failed", ago(600), 6)
        run_finished("cancelled", "Cancelled", ago(600), 6)  # neither success nor failure
        run_finished("old-bad", "Failed", ago(3600), 10)  # finished 50 min ago: outside
        [sample] = samples(FAILURES, scope=TENANT, now=NOW)
    assert sample.value == 20.0 and sample.active
    assert sample.summary.startswith("2 of 10 finished runs failed in the last 5 min (20%")
    with schema_context(beta.schema):
        for n in range(4):  # four runs only: too few to judge
            run_finished(f"bad-{n}", "Failed", ago(600), 6)
        assert samples(FAILURES, scope=TENANT, now=NOW) == []


def test_run_failure_rate_of_the_platform_reads_its_run_counters(alpha):
    with schema_context("public"):
        failures = series_make("run_failure_total", MetricKind.SUM, service="factory")
        successes = series_make("run_success_total", MetricKind.SUM, service="factory")
        points_write(failures, [(ago(200), 1.0), (ago(100), 2.0), (ago(900), 50.0)])
        points_write(successes, [(ago(200), 40.0), (ago(100), 57.0)])
        [sample] = samples(FAILURES, scope=PLATFORM, now=NOW)
    assert sample.value == 3.0 and not sample.active  # 3 of 100
    with schema_context(alpha.schema):  # the tenant reads its runs, not the platform's series
        assert samples(FAILURES, scope=TENANT, now=NOW) == []


def test_queue_depth_averages_each_queue_over_the_window(alpha, beta):
    with schema_context(alpha.schema):
        high = series_make("queue_depth", queue_name="build", priority="high")
        low = series_make("queue_depth", queue_name="build", priority="low")
        points_write(high, [(ago(50), 1000.0), (ago(20), 1400.0)])  # average 1,200
        points_write(low, [(ago(30), 100.0)])  # the same queue from another reporter: added
        points_write(series_make("queue_depth", queue_name="docs"), [(ago(10), 3.0)])
        points_write(series_make("queue_depth", queue_name="drained"), [(ago(300), 5000.0)])
        found = samples(QUEUE, scope=TENANT, now=NOW)
    assert [(s.labels, s.value, s.active) for s in found] == [
        ({"queue_name": "build"}, 1300.0, True),
        ({"queue_name": "docs"}, 3.0, False),
    ]  # the deepest first; "drained" reported nothing in the last minute: no sample
    with schema_context(beta.schema):
        assert samples(QUEUE, scope=TENANT, now=NOW) == []
    with schema_context("public"):
        assert samples(QUEUE, scope=PLATFORM, now=NOW) == []


def test_queue_depth_is_bounded_to_the_deepest_queues(alpha):
    with schema_context(alpha.schema):
        for n in range(LABEL_SETS_MAX + 5):
            points_write(series_make("queue_depth", queue_name=f"q{n:02d}"), [(ago(5), float(n))])
        found = samples(QUEUE, scope=TENANT, now=NOW)
    assert len(found) == LABEL_SETS_MAX
    assert found[0].labels == {"queue_name": f"q{LABEL_SETS_MAX + 4:02d}"}


def test_worker_error_rate_is_errors_per_job_finished(alpha):
    with schema_context(alpha.schema):
        errors = series_make("worker_errors_total", MetricKind.SUM, error_type="oom")
        points_write(errors, [(ago(100), 2.0), (ago(50), 1.0), (ago(400), 9.0)])
        jobs = series_make("job_duration_seconds", MetricKind.HISTOGRAM, job_type="build")
        points_write(jobs, [(ago(90), Hist((1.0, 10.0), (6, 8, 6), sum=100.0))])
        [sample] = samples(WORKERS, scope=TENANT, now=NOW)
        assert sample.value == 15.0 and sample.active
        assert "3 worker errors for 20 jobs finished in the last 5 min" in sample.summary
        strict_jobs = replace(WORKERS, threshold=Decimal(20))
        assert not samples(strict_jobs, scope=TENANT, now=NOW)[0].active


def test_worker_error_rate_needs_enough_jobs(alpha, settings):
    settings.ONCALL_MIN_JOBS = 21
    with schema_context(alpha.schema):
        jobs = series_make("job_duration_seconds", MetricKind.HISTOGRAM, job_type="build")
        points_write(jobs, [(ago(90), Hist((1.0, 10.0), (6, 8, 6), sum=100.0))])
        assert samples(WORKERS, scope=TENANT, now=NOW) == []


def test_ai_cost_of_the_last_hour_against_the_day_before(alpha):
    llm_spend(alpha, NOW - timedelta(days=3), "1.00")  # usage from before: a baseline exists
    llm_spend(alpha, ago(20 * 3600), "0.55")  # the 24 hours before the last hour
    llm_spend(alpha, ago(3600), "1.10", "2.20")  # 13:25, in the last complete hour
    llm_spend(alpha, ago(600), "100")  # 14:15: the hour is not complete, not read yet
    with schema_context(alpha.schema):
        [sample] = samples(COST, scope=TENANT, now=NOW)
    assert sample.active
    assert sample.value == float(Decimal("3.30") / (Decimal("0.55") / 24))  # 144 times
    assert sample.summary.startswith(
        "AI cost $3.30 in the last 1 h, 144 times the usual $0.02 per 1 h of the day before"
    )
    with schema_context("public"):  # the platform has no AI cost rule
        assert samples(COST, scope=PLATFORM, now=NOW) == []


def test_ai_cost_waits_for_a_day_of_history_and_the_minimum_cost(alpha, beta):
    llm_spend(alpha, ago(3600), "50")  # the tenant's first usage ever
    with schema_context(alpha.schema):
        assert samples(COST, scope=TENANT, now=NOW) == []
    llm_spend(beta, NOW - timedelta(days=3), "1.00")
    llm_spend(beta, ago(3600), "0.40")  # up from nothing, but under the $1 minimum
    with schema_context(beta.schema):
        [sample] = samples(COST, scope=TENANT, now=NOW)
    assert not sample.active and sample.value is None


def test_control_plane_silence_from_its_heartbeats(alpha):
    with schema_context(alpha.schema):
        heartbeat_make("factory-worker", ago(5))
        assert samples(CONTROL, scope=TENANT, now=NOW) == []  # never reported: no page
        heartbeat_make("factory-control-plane", ago(300))
        heartbeat_make("factory-scheduler", ago(200), instance="s-1")
        [sample] = samples(CONTROL, scope=TENANT, now=NOW)
    assert sample.value == 200.0 and sample.active
    assert sample.summary.startswith("No control-plane heartbeat or metric for 3 min")
    with schema_context("public"):
        heartbeat_make("platform-api", ago(10))
        [platform] = samples(CONTROL, scope=PLATFORM, now=NOW)
    assert platform.value == 10.0 and not platform.active
