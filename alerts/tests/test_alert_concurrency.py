"""Two evaluators at once, each on its own database connection, raise an alert once.

The data is committed (threads cannot see the test's transaction) by a module fixture that removes
it again; this module holds only this test so nothing else sees the committed rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery
from alerts.services import evaluate
from alerts.tests.test_alerts import TODAY, _spend
from billing.models import Budget
from notifications.models import Notification
from tests.support import noon

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def committed_budget(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A budget already crossed, committed in alpha (each thread has its own connection)."""
    from factory_portal.tenants.models import Tenant
    from usage.models import LlmUsageDaily, LlmUsageEvent, LlmUsageHourly, Project

    with django_db_blocker.unblock():
        tenant = Tenant.objects.get(slug="alpha")
        with schema_context(tenant.schema_name):
            Budget.objects.create(project="race", amount=Decimal("10"), thresholds=[50])
            _spend(
                tenant, "9", at=datetime(2026, 11, 3, tzinfo=UTC), event_id="race-1", project="race"
            )
    yield
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        Notification.objects.filter(title__contains="project race").delete()
        Alert.objects.filter(key__startswith="budget:project=race").delete()
        Budget.objects.filter(project="race").delete()
        LlmUsageEvent.objects.filter(event_id="race-1").delete()
        LlmUsageHourly.objects.filter(project__slug="race").delete()
        LlmUsageDaily.objects.filter(project__slug="race").delete()
        Project.objects.filter(slug="race").delete()


def test_two_concurrent_evaluators_raise_once(committed_budget, alpha, django_db_blocker):
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def evaluator() -> None:
        from django.db import connections

        try:
            with django_db_blocker.unblock(), schema_context(alpha.schema):
                barrier.wait()
                results.append(len(evaluate.budgets_evaluate(now=noon(TODAY))))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == [0, 1]
    counts = []

    def count() -> None:
        from django.db import connections

        with django_db_blocker.unblock(), schema_context(alpha.schema):
            counts.append(Alert.objects.filter(key__startswith="budget:project=race").count())
            counts.append(
                Delivery.objects.filter(alert__key__startswith="budget:project=race").count()
            )
        connections.close_all()

    reader = threading.Thread(target=count)
    reader.start()
    reader.join(30)
    assert counts == [1, 1]  # one alert, one e-mail to alpha's admin
