"""Overview selectors: exact month-to-date cost, runs by status, active runs with step and cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from tests.support import add_llm_call, run_update
from usage import selectors
from usage.models import Job, Project, Run, RunStatus

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
NEXT_DAY = datetime(2026, 10, 21, tzinfo=UTC)
MONTH = datetime(2026, 10, 1, tzinfo=UTC)


def _run(project, run_id, status, requested_at, **extra):
    return Run.objects.create(
        run_id=run_id,
        project=project,
        status=status,
        requested_at=requested_at,
        updated_at=requested_at,
        **extra,
    )


def test_token_totals_sum_exactly_within_the_period(alpha):
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        add_llm_call(
            project=project, run=None, event_id="in-1", at=MONTH, cost=Decimal("0.1000000001")
        )
        add_llm_call(
            project=project,
            run=None,
            event_id="in-2",
            at=NOW - timedelta(seconds=1),
            cost=Decimal("0.2000000002"),
        )
        add_llm_call(
            project=project, run=None, event_id="unpriced", at=NOW - timedelta(hours=1), cost=None
        )
        add_llm_call(
            project=project,
            run=None,
            event_id="before",
            at=MONTH - timedelta(seconds=1),
            cost=Decimal(5),
        )
        add_llm_call(project=project, run=None, event_id="next-day", at=NEXT_DAY, cost=Decimal(7))
        totals = selectors.token_totals(start=MONTH.date(), end=NEXT_DAY.date())
    assert totals.cost == Decimal("0.3000000003")
    assert totals.calls == 3
    assert totals.unpriced_calls == 1
    assert totals.input_tokens == 3000


def test_empty_tenant_has_zero_totals_and_no_freshness(alpha):
    with schema_context(alpha.schema):
        totals = selectors.token_totals(start=MONTH.date(), end=NOW.date())
        assert totals.cost == Decimal(0) and totals.calls == 0
        assert selectors.usage_complete_until() is None
        assert selectors.active_runs() == []
        assert set(selectors.run_status_counts(start=MONTH.date(), end=NOW.date()).values()) == {0}


def test_run_status_counts_include_every_status(alpha):
    with schema_context(alpha.schema):
        run_update("a", "Succeeded", MONTH + timedelta(days=1))
        run_update("b", "Running", MONTH + timedelta(days=2))
        run_update("b", "Succeeded", MONTH + timedelta(days=2, hours=1))
        run_update("c", "Failed", MONTH + timedelta(days=3))
        run_update("old", "Failed", MONTH - timedelta(days=3))
        counts = selectors.run_status_counts(start=MONTH.date(), end=NOW.date())
    assert counts == {"Requested": 0, "Running": 0, "Succeeded": 2, "Failed": 1, "Cancelled": 0}


def test_active_runs_show_current_step_and_cost_so_far(alpha):
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="Payments")
        running = _run(
            project,
            "r-running",
            RunStatus.RUNNING,
            NOW - timedelta(minutes=10),
            started_at=NOW - timedelta(minutes=9),
        )
        queued = _run(project, "r-queued", RunStatus.REQUESTED, NOW - timedelta(minutes=1))
        _run(project, "r-done", RunStatus.SUCCEEDED, NOW - timedelta(hours=1))
        Job.objects.create(
            run=running,
            job_id="j1",
            step_name="plan",
            attempt=1,
            status=RunStatus.SUCCEEDED,
            started_at=NOW - timedelta(minutes=9),
        )
        Job.objects.create(
            run=running,
            job_id="j2",
            step_name="implement",
            attempt=1,
            status=RunStatus.RUNNING,
            started_at=NOW - timedelta(minutes=5),
        )
        add_llm_call(project=project, run=running, event_id="c1", at=NOW, cost=Decimal("0.25"))
        add_llm_call(project=project, run=running, event_id="c2", at=NOW, cost=Decimal("0.5"))
        active = selectors.active_runs()
        assert selectors.active_run_counts() == {"Requested": 1, "Running": 1}
    assert [r.run_id for r in active] == ["r-running", "r-queued"]
    assert active[0].current_step == "implement"
    assert active[0].cost_so_far == Decimal("0.75")
    assert active[0].project == "Payments"
    assert active[1].current_step is None
    assert active[1].cost_so_far == Decimal(0)
    assert queued.status == RunStatus.REQUESTED


def test_usage_complete_until_is_the_newest_event(alpha):
    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        add_llm_call(
            project=project, run=None, event_id="e1", at=NOW - timedelta(days=1), cost=Decimal(1)
        )
        add_llm_call(project=project, run=None, event_id="e2", at=NOW, cost=Decimal(1))
        assert selectors.usage_complete_until() == NOW


def test_database_refuses_impossible_token_counts(alpha):
    from django.db import IntegrityError, transaction

    from usage.models import CostSource, LlmUsageEvent

    with schema_context(alpha.schema):
        project = Project.objects.create(slug="p", name="P")
        with pytest.raises(IntegrityError), transaction.atomic():
            LlmUsageEvent.objects.create(
                event_id="bad",
                occurred_at=NOW,
                project=project,
                provider="x",
                model="y",
                input_tokens=10,
                cached_input_tokens=8,
                cache_write_tokens=5,
                cost=Decimal(0),
                cost_source=CostSource.PRICE_BOOK,
            )
        with pytest.raises(IntegrityError), transaction.atomic():
            LlmUsageEvent.objects.create(
                event_id="dup",
                occurred_at=NOW,
                project=project,
                provider="x",
                model="y",
                cost=None,
                cost_source=CostSource.PRICE_BOOK,
            )
