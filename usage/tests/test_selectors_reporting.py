"""usage.selectors.reporting: the usage report read from the rollups, and the recent success
rates counted by when runs finished."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import llm_event_in, report_runs_make, run_finished
from usage.domain import durations
from usage.pricing import pricer_for
from usage.selectors import reporting
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_usage_report_reads_runs_and_tokens_from_rollups(alpha):
    day = date(2026, 10, 5)
    report_runs_make(alpha, day)
    with schema_context(alpha.schema):
        at = datetime(2026, 10, 5, 12, tzinfo=UTC)
        events_ingest(
            events=[
                llm_event_in("e1", at, project="web", input_tokens=1000, output_tokens=10),
                llm_event_in("e2", at, project="web", input_tokens=500, output_tokens=5),
                llm_event_in(
                    "e3",
                    at + timedelta(days=2),
                    project="web",
                    model="gpt-4.1-mini",
                    input_tokens=7,
                    output_tokens=3,
                ),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        report = reporting.usage_report(start=day, end=day + timedelta(days=6), grain="day")
        weekly = reporting.usage_report(start=day, end=day + timedelta(days=6), grain="week")

    assert report.total_runs == 9
    first = report.periods[str(day)]
    assert first.by_status["Succeeded"] == 6 and first.by_status["Failed"] == 2
    assert first.success_rate == Decimal("75.0")
    assert report.periods[str(day + timedelta(days=1))].success_rate == Decimal("100.0")
    assert [t.template for t in report.templates][:2] == ["spa", "api"]
    spa = report.templates[0]
    assert (spa.runs, spa.success_rate) == (6, Decimal("100.0"))
    assert report.tokens_by_model["gpt-4.1"] == {str(day): 1515}
    assert report.tokens_by_model["gpt-4.1-mini"] == {str(day + timedelta(days=2)): 10}
    assert report.model_totals[0] == ("gpt-4.1", 2, 1500, 15)
    # Weeks start on Monday: Oct 5 2026 is a Monday, so all nine runs share one week.
    assert list(weekly.periods) == ["2026-10-05"] and weekly.total_runs == 9
    # Median duration of the day's finished runs: six of 10 min, two of 30 min: inside the
    # 10-minute bucket (interpolated there, not its upper edge).
    bucket = durations.bucket_of(10 * 60_000)
    p50 = first.percentile_ms(0.5)
    assert durations.bucket_lower_ms(bucket) < p50 < durations.bucket_upper_ms(bucket)


def test_recent_success_rates_count_runs_by_when_they_finished(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        run_finished("a", "Succeeded", now - timedelta(minutes=40), 10)
        run_finished("b", "Failed", now - timedelta(minutes=50), 20)
        run_finished("c", "Succeeded", now - timedelta(hours=5), 10)
        run_finished("d", "Succeeded", now - timedelta(days=3), 10)
        run_finished("e", "Failed", now - timedelta(days=9), 10)
        rates = reporting.recent_success_rates(now=now)
    assert rates == {"1h": Decimal("50.0"), "24h": Decimal("66.7"), "7d": Decimal("75.0")}
