"""The error groups' daily rollup (``ErrorGroupDaily``) equals a recount from the stored errors
after ingest, after re-sent errors (idempotent), after a run's template changes and after a change
of the tenant's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from factory_portal.tenants.services import tenant_timezone_set
from tests.support import run_update
from usage.models import ErrorGroupDaily
from usage.services.errors import span_errors_runs_refresh
from usage.tests.errors_data import error_make

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)

RECOUNT = """
SELECT fingerprint, (occurred_at AT TIME ZONE %(zone)s)::date, template, step_name, count(*),
    count(DISTINCT run_id)
FROM usage_spanerror GROUP BY 1, 2, 3, 4
"""
DAY_RUNS = """
SELECT fingerprint, (occurred_at AT TIME ZONE %(zone)s)::date, count(DISTINCT run_id)
FROM usage_spanerror GROUP BY 1, 2
"""


def _rollup() -> tuple[set, set]:
    rows = ErrorGroupDaily.objects.values_list(
        "fingerprint", "day", "template", "step_name", "errors", "runs", "day_runs"
    )
    per_row = {r[:6] for r in rows}
    per_day: dict[tuple, int] = {}
    for r in rows:
        per_day[r[:2]] = per_day.get(r[:2], 0) + r[6]
    return per_row, {(*k, v) for k, v in per_day.items()}


def _recount(zone: str) -> tuple[set, set]:
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT, {"zone": zone})
        per_row = set(cursor.fetchall())
        cursor.execute(DAY_RUNS, {"zone": zone})
        return per_row, set(cursor.fetchall())


def _storm(alpha) -> None:
    error_make(alpha, "r-1", AT, span="a")
    error_make(alpha, "r-1", AT + timedelta(minutes=5), span="b", step="verify")
    error_make(alpha, "r-1", AT + timedelta(hours=1), span="c")  # the next UTC day
    error_make(alpha, "r-2", AT, span="d", template="react-spa")
    error_make(alpha, "r-3", AT, span="e", error_type="Quota", message="quota 1")


def test_the_rollup_equals_a_recount_and_resends_count_nothing(alpha):
    _storm(alpha)
    _storm(alpha)  # every error re-sent
    with schema_context(alpha.schema):
        assert _rollup() == _recount("UTC")
        assert sum(ErrorGroupDaily.objects.values_list("errors", flat=True)) == 5
        # r-1 erred on the 10th in two steps: one run that day, counted in its first error's row.
        day = AT.date()
        assert sorted(
            ErrorGroupDaily.objects.filter(day=day, template="python-fastapi-service")
            .exclude(step_name="")
            .values_list("step_name", "runs", "day_runs")
        ) == [("deploy", 1, 1), ("deploy", 1, 1), ("verify", 1, 0)]


def test_a_template_change_moves_the_counts(alpha):
    _storm(alpha)
    with schema_context(alpha.schema):
        run_update("r-2", "Failed", AT, project="web", template_recipe_id="go-worker")
        span_errors_runs_refresh(run_ids=["r-2"])
        assert _rollup() == _recount("UTC")
        assert ErrorGroupDaily.objects.filter(template="go-worker").count() == 1
        assert not ErrorGroupDaily.objects.filter(template="react-spa").exists()


def test_a_zone_change_recounts_the_days(alpha):
    _storm(alpha)
    tenant_timezone_set(tenant=alpha.tenant, timezone="America/New_York")
    with schema_context(alpha.schema):
        assert _rollup() == _recount("America/New_York")
        # 23:30 and 00:30 UTC are the same New York evening.
        assert set(ErrorGroupDaily.objects.values_list("day", flat=True)) == {AT.date()}
