"""usage.selectors.steps over hand-built runs, jobs and calls stored through the real ingest
services: first-pass vs rework, percentiles inside their bucket, AI cost per step to the cent
(calls that arrive before their job included), the previous period, the tenant's day edges, and
the step rollup kept at ingest equal to the one rebuilt from raw rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.operator.models import TenantPriceOverride
from factory_portal.money import quantize_cents
from factory_portal.tenants.connection import connection_zone
from factory_portal.tenants.services import tenant_timezone_set
from tests.support import llm_event_in
from usage.domain import durations
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import RunLedger, StepDaily
from usage.pricing import pricer_for
from usage.selectors import steps
from usage.services.ingest import events_ingest
from usage.services.reprice import llm_reprice
from usage.services.rollups import rollups_rebuild
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

DAY = date(2026, 10, 5)  # the range is Oct 5..11; the previous one Sep 28..Oct 4
NOON = datetime(2026, 10, 5, 12, tzinfo=UTC)


def _job(
    job_id: str, attempt: int, step: str, status: str, start: datetime, seconds: int, failure=""
):
    return JobUpdate(
        job_id=job_id,
        attempt=attempt,
        status=status,
        timestamp=start + timedelta(seconds=seconds),
        step_name=step,
        started_at=start,
        finished_at=start + timedelta(seconds=seconds),
        failure_type=failure or None,
    )


def _run(run_id: str, status: str, at: datetime, template: str, jobs, failure="") -> None:
    runs_ingest(
        updates=[
            RunUpdate(
                position=0,
                run_id=run_id,
                project="web",
                status=status,
                timestamp=at + timedelta(minutes=30),
                template_recipe_id=template,
                requested_at=at,
                started_at=at,
                finished_at=at + timedelta(minutes=30),
                failure_type=failure or None,
                jobs=tuple(jobs),
            )
        ]
    )


def _calls(tenant, *calls: tuple[str, str, str, str]) -> None:
    """(event id, run id, job id, cost) calls with client-supplied costs."""
    events_ingest(
        events=[
            llm_event_in(e, NOON, project="web", run_id=r, job_id=j, cost=Decimal(c))
            for e, r, j, c in calls
        ],
        pricer=pricer_for(tenant),
    )


def _history(alpha) -> None:
    # Calls of r1's test job arrive before the job does: counted when it arrives.
    _calls(
        alpha.tenant,
        ("c1", "r1", "r1-test", "0.0100000001"),
        ("c2", "r1", "r1-test", "0.0049999999"),
        ("c9", "r1", "no-such-job", "5.0000000000"),
    )
    t = NOON
    _run(
        "r1",
        "Succeeded",
        t,
        "spa",
        [
            _job("r1-build", 1, "build", "Succeeded", t, 60),
            _job("r1-test", 1, "test", "Failed", t, 30, "test_failure"),
            _job("r1-test", 2, "test", "Succeeded", t, 90),
        ],
    )
    _run(
        "r2",
        "Succeeded",
        t + timedelta(days=1),
        "spa",
        [
            _job("r2-build", 1, "build", "Succeeded", t, 120),
            _job("r2-test", 1, "test", "Succeeded", t, 40),
        ],
    )
    _run(
        "r3",
        "Failed",
        t + timedelta(days=2),
        "api",
        [_job("r3-build", 1, "build", "Failed", t, 10, "compile_error")],
        failure="compile_error",
    )
    # The previous period: everything passed first time.
    _run(
        "r0",
        "Succeeded",
        t - timedelta(days=3),
        "spa",
        [
            _job("r0-build", 1, "build", "Succeeded", t, 50),
            _job("r0-test", 1, "test", "Succeeded", t, 45),
        ],
    )
    # Calls after their jobs: counted at ingest.
    _calls(
        alpha.tenant,
        ("c3", "r2", "r2-build", "0.0033333333"),
        ("c4", "r3", "r3-build", "0.0200000000"),
        ("c5", "r0", "r0-test", "1.0000000000"),
    )


def _rows(report):
    return {(r.template, r.step): r for r in report.rows}


def test_first_pass_rework_failures_and_trend_by_step(alpha):
    with schema_context(alpha.schema):
        _history(alpha)
        report = steps.step_report(start=DAY, end=DAY + timedelta(days=6))
        by_pass = steps.step_report(start=DAY, end=DAY + timedelta(days=6), sort="first_pass_rate")
    assert (report.previous_start, report.previous_end) == (date(2026, 9, 28), date(2026, 10, 4))
    rows = _rows(report)
    build, test = rows[(None, "build")], rows[(None, "test")]
    assert (build.current.runs, build.current.attempts, build.current.retries) == (3, 3, 0)
    assert build.current.first_pass_rate == Decimal(2) / 3
    assert build.current.rework_rate == 0
    assert build.current.failure_rate == Decimal(1) / 3
    assert build.current.failure_types == [("compile_error", 1)]
    assert (test.current.runs, test.current.attempts, test.current.retries) == (2, 3, 1)
    assert test.current.first_pass_rate == Decimal("0.5")
    assert test.current.rework_rate == Decimal("0.5")
    assert test.current.failure_types == [("test_failure", 1)]
    # Previous period: one run, every step passed first time.
    assert test.previous is not None and test.previous.first_pass_rate == 1
    assert test.previous.rework_rate == 0 and test.previous.ai_cost == Decimal("1.0000000000")
    # Sorted by rework rate, worst first.
    assert [r.step for r in report.rows] == ["test", "build"]
    assert [r.step for r in by_pass.rows] == ["test", "build"]  # 50% before 67%


def test_template_and_step_grouping(alpha):
    with schema_context(alpha.schema):
        _history(alpha)
        report = steps.step_report(start=DAY, end=DAY + timedelta(days=6), grouping="template")
        only_api = steps.step_report(start=DAY, end=DAY + timedelta(days=6), template="api")
    rows = _rows(report)
    assert set(rows) == {("spa", "build"), ("spa", "test"), ("api", "build")}
    assert rows[("spa", "build")].current.first_pass_rate == 1
    assert rows[("api", "build")].current.first_pass_rate == 0
    assert [(r.step, r.current.runs) for r in only_api.rows] == [("build", 1)]


def test_job_duration_percentiles_are_interpolated_not_bucket_edges(alpha):
    with schema_context(alpha.schema):
        _history(alpha)
        report = steps.step_report(start=DAY, end=DAY + timedelta(days=6))
    build = _rows(report)[(None, "build")].current
    expected = durations.histogram_merge(
        [durations.histogram_add([], ms) for ms in (60_000, 120_000, 10_000)]
    )
    assert build.p50_ms == durations.percentile_ms(expected, 0.5)
    bucket = durations.bucket_of(60_000)  # the true median
    assert durations.bucket_lower_ms(bucket) < build.p50_ms < durations.bucket_upper_ms(bucket)
    assert build.p95_ms < durations.bucket_upper_ms(durations.bucket_of(120_000))


def test_ai_cost_per_step_sums_to_the_cent(alpha):
    with schema_context(alpha.schema):
        _history(alpha)
        report = steps.step_report(start=DAY, end=DAY + timedelta(days=6))
        ledger = sum(
            RunLedger.objects.filter(run__run_id__in=["r1", "r2", "r3"]).values_list(
                "cost", flat=True
            )
        )
    rows = _rows(report)
    test, build = rows[(None, "test")].current, rows[(None, "build")].current
    assert test.ai_cost == Decimal("0.0150000000") and test.calls == 2  # arrived before the job
    assert build.ai_cost == Decimal("0.0233333333") and build.calls == 2
    # Everything but the call naming a job that never arrived (5.00) is in some step.
    assert ledger - Decimal(5) == test.ai_cost + build.ai_cost
    assert quantize_cents(test.ai_cost + build.ai_cost) == Decimal("0.04")
    assert report.total is not None and report.total.ai_cost == Decimal("0.0383333333")


def test_incremental_rollup_equals_rebuild(alpha):
    def snapshot():
        return sorted(
            StepDaily.objects.filter(runs__gt=0).values_list(
                "day",
                "template",
                "step_name",
                "runs",
                "settled",
                "first_pass",
                "reworked",
                "attempts",
                "retries",
                "failed_attempts",
                "duration_ms_total",
                "duration_histogram",
                "failure_types",
                "calls",
                "cost",
            )
        )

    with schema_context(alpha.schema):
        _history(alpha)
        # A template change moves the run's steps (and its calls) to the new template.
        runs_ingest(
            updates=[
                RunUpdate(
                    0, "r2", "web", "Succeeded", NOON + timedelta(days=2), template_recipe_id="spa"
                )
            ]
        )
        # An unpriced call of a known job, priced afterwards: re-pricing moves the step's cost.
        events_ingest(
            events=[
                llm_event_in(
                    "c-unpriced",
                    NOON,
                    project="web",
                    run_id="r2",
                    job_id="r2-build",
                    provider="self-hosted",
                    model="model-without-a-price",
                )
            ],
            pricer=pricer_for(alpha.tenant),
        )
        TenantPriceOverride.objects.create(
            tenant=alpha.tenant,
            provider="self-hosted",
            model="model-without-a-price",
            input_per_mtok=Decimal("0.10"),
            output_per_mtok=Decimal("0.30"),
            effective_from=NOON - timedelta(days=30),
        )
        before = StepDaily.objects.get(template="spa", step_name="build", day=date(2026, 10, 6))
        corrected = llm_reprice(
            start=NOON - timedelta(hours=1),
            end=NOON + timedelta(hours=1),
            pricer=pricer_for(alpha.tenant),
            reason="test",
        ).corrected
        after = StepDaily.objects.get(template="spa", step_name="build", day=date(2026, 10, 6))
        assert corrected == 1 and after.cost > before.cost
        kept = snapshot()
        rollups_rebuild(zone=connection_zone())
        assert snapshot() == kept


def test_a_retry_naming_another_step_is_rebuilt_as_it_was_kept(alpha):
    """A job whose first attempt named no step and whose retry named one: each attempt counts
    under its own step name, the first attempt and the count of attempts taken per name, on the
    way in as on a rebuild (the rebuild took them over the whole job: "build" was not settled
    there, so a time-zone change moved it; a review found it)."""
    with schema_context(alpha.schema):
        _run(
            "renamed",
            "Succeeded",
            NOON,
            "spa",
            [
                _job("j1", 1, "", "Failed", NOON, 5, failure="Timeout"),
                _job("j1", 2, "build", "Succeeded", NOON + timedelta(minutes=1), 5),
            ],
        )
        fields = ("step_name", "runs", "settled", "first_pass", "reworked", "attempts", "retries")

        def snapshot():  # type: ignore[no-untyped-def]
            return sorted(StepDaily.objects.filter(runs__gt=0).values_list(*fields))

        kept = snapshot()
        assert ("build", 1, 1, 1, 0, 1, 0) in kept
        rollups_rebuild(zone=connection_zone())
        assert snapshot() == kept


def test_lead_time_percentiles_and_day_edges_in_the_tenants_zone(alpha, monkeypatch):
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone="America/New_York")
    with schema_context(alpha.schema):
        # Oct 12 02:00 UTC is Oct 11 22:00 in New York: inside Oct 5..11 there, not in UTC.
        late = datetime(2026, 10, 12, 2, tzinfo=UTC)
        _run("edge", "Succeeded", late, "spa", [_job("e-build", 1, "build", "Succeeded", late, 5)])
        # Oct 5 03:00 UTC is Oct 4 23:00 in New York: the previous range.
        early = datetime(2026, 10, 5, 3, tzinfo=UTC)
        _run("early", "Succeeded", early, "spa", [_job("x-build", 1, "build", "Failed", early, 5)])
        report = steps.step_report(start=DAY, end=DAY + timedelta(days=6))
    build = _rows(report)[(None, "build")]
    assert build.current.runs == 1 and build.current.first_pass_rate == 1
    assert build.previous is not None and build.previous.first_pass_rate == 0
    # Each run took 30 minutes from request to finish: every percentile is in that bucket.
    bucket = durations.bucket_of(30 * 60_000)
    for name in ("p50", "p90", "p95"):
        value = report.lead_time[name]
        assert durations.bucket_lower_ms(bucket) < value < durations.bucket_upper_ms(bucket)
    assert report.succeeded_runs == 1
    assert report.previous_lead_time["p50"] is not None


def test_empty_range(alpha):
    with schema_context(alpha.schema):
        report = steps.step_report(start=DAY, end=DAY)
    assert report.rows == [] and report.total is None
    assert report.lead_time == {"p50": None, "p90": None, "p95": None}
    with pytest.raises(ValueError):
        steps.step_report(start=DAY, end=DAY, sort="nope")
