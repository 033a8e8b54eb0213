"""A run's guard follows its usage within seconds, through a real worker: ingest's
``usage_stored`` makes billing enqueue the tenant's run guard pass (debounced 1 s), which stores
the new projection and state (and raises the alert) in the tenant's schema.

Committed on connections of their own (the worker cannot see the test's transaction) and
removed at the end, like ``test_forecast_after_ingest``."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery
from alerts.oncall.models import Incident, Page
from billing import services
from billing.models import RunBudget, RunGuard
from billing.tests.guard_data import run_with_jobs, spend
from notifications.models import Notification, NotificationRead
from tests.test_forecast_after_ingest import committed, worker  # noqa: F401  (the fixture)
from usage.domain.runs import JobUpdate
from usage.models import Job, LlmUsageEvent, Project, Run, RunDaily, RunLedger, StepDaily

pytestmark = pytest.mark.django_db
PROJECT, TEMPLATE = "guard-worker", "tpl-worker"
TARGET_S = 5


def _setup() -> None:
    at = timezone.now() - timedelta(minutes=5)
    job = JobUpdate("w-job", 1, "Running", at, step_name="code", started_at=at)
    run_with_jobs("w-run", "Running", at, (job,), project=PROJECT, template=TEMPLATE)
    spend("w-run", "w-job", "1", "w-e0", at, project=PROJECT)
    services.run_budget_set(template=TEMPLATE, amount=Decimal("1.50"), warn_percent=90)


# What the test commits besides its usage: alerts and their deliveries, the inbox's
# notifications (and reads), incidents and their pages; every row above the ids found before
# the test is the test's (its own database: nothing else writes there meanwhile).
_RAISED = (NotificationRead, Notification, Delivery, Alert, Page, Incident)


def _marks(alpha) -> dict[type, int]:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        return {m: m.objects.aggregate(top=Max("pk"))["top"] or 0 for m in _RAISED}


def _cleanup(alpha, marks: dict[type, int]) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        # Budgets first: a pass still running finds nothing to guard, and the runs before the
        # guards, so none is stored again behind the cleanup.
        RunBudget.objects.all().delete()
        LlmUsageEvent.objects.filter(project__slug=PROJECT).delete()
        RunLedger.objects.filter(run__project__slug=PROJECT).delete()
        StepDaily.objects.filter(template=TEMPLATE).delete()
        RunDaily.objects.filter(project__slug=PROJECT).delete()
        Job.objects.filter(run__project__slug=PROJECT).delete()
        Run.objects.filter(project__slug=PROJECT).delete()
        Project.objects.filter(slug=PROJECT).delete()
        RunGuard.objects.all().delete()
        for model in _RAISED:
            model.objects.filter(pk__gt=marks[model]).delete()


def _state(alpha) -> str | None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        return RunGuard.objects.filter(run__run_id="w-run").values_list("state", flat=True).first()


def _wait(alpha, state: str, limit_s: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if _state(alpha) == state:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"guard state {_state(alpha)!r}, not {state!r}, after {limit_s} s")


def test_the_guard_follows_ingest_within_seconds(worker, alpha, django_db_blocker) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    marks = _marks(alpha)
    try:
        committed(django_db_blocker, lambda: _with(alpha, _setup))
        _wait(alpha, "ok", 10)  # the budget's own pass: $1 of $1.50, under 90%
        committed(
            django_db_blocker,
            lambda: _with(alpha, lambda: spend("w-run", "w-job", "1", "w-e1", timezone.now(),
                                               project=PROJECT)),
        )  # fmt: skip
        took = _wait(alpha, "stop", 15)
        print(f"run guard: state followed ingest in {took:.2f} s")
        assert took <= TARGET_S
        with schema_context(alpha.schema):
            guard = RunGuard.objects.get(run__run_id="w-run")
            assert guard.projected_cost == 2 and guard.limit == Decimal("1.50")
            assert (
                Alert.objects.filter(kind=Alert.Kind.RUN_BUDGET, severity="critical").count() == 1
            )
    finally:
        committed(django_db_blocker, lambda: _cleanup(alpha, marks))
        with schema_context(alpha.schema):  # nothing of it is left for the tests after it
            assert not any(m.objects.filter(pk__gt=marks[m]).exists() for m in _RAISED)
            assert not RunGuard.objects.exists() and not Run.objects.filter(run_id="w-run")


def _with(alpha, work) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        work()
