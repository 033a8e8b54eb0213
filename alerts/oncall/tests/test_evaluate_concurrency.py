"""Two evaluations at once (two workers, each on its own database connection) open, fire and
notify an incident once: the race to open it (the one-open constraint) and the race to fire a
pending one (its row lock).

The rows are committed (threads cannot see the test's transaction): written by a module fixture
and, during a test, on a connection of their own (``committed``); the fixture removes them again.
This module holds only these tests so nothing else sees the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.oncall.models import Incident, Page, Route, RuleSetting
from alerts.oncall.services.evaluate import Summary, rules_evaluate
from alerts.oncall.tests.own_connection import at_once, committed
from notifications.models import Notification
from runtime.models import MetricSeries
from runtime.tests.rows import points_write, series_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
RULE = "factory_queue_depth_high"


@pytest.fixture(scope="module")
def committed_queue(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """alpha: a queue at 5,000 jobs and the queue rule over 60 s (its for_s set per test)."""
    with django_db_blocker.unblock(), schema_context("alpha"):
        series = series_make("queue_depth", queue_name="race")
        points_write(series, [(NOW - timedelta(seconds=i), 5000.0) for i in range(1, 50)])
        RuleSetting.objects.create(
            rule=RULE, threshold=Decimal(1000), window_s=120, for_s=0, severity="warning"
        )
    yield
    with django_db_blocker.unblock(), schema_context("alpha"):
        Incident.objects.all().delete()
        Alert.objects.filter(key__startswith="incident:").delete()
        Notification.objects.filter(kind="runtime").delete()
        RuleSetting.objects.filter(rule=RULE).delete()
        MetricSeries.objects.filter(pk=series.pk).delete()


def race(django_db_blocker, now: datetime) -> list[Summary]:  # type: ignore[no-untyped-def]
    return at_once(django_db_blocker, lambda: rules_evaluate(now=now), threads=2)


def counts(django_db_blocker) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return committed(
        django_db_blocker,
        lambda: {
            "incidents": Incident.objects.filter(rule=RULE).count(),
            "firing": Incident.objects.filter(rule=RULE, state="firing").count(),
            "routes": Route.objects.filter(enabled=True, severities__contains=["warning"]).count(),
            "triggers": Page.objects.filter(event="trigger").count(),
            "alerts": Alert.objects.filter(key__startswith="incident:").count(),
            "notes": Notification.objects.filter(kind="runtime").count(),
        },
    )


def _reset(django_db_blocker, for_s: int) -> None:  # type: ignore[no-untyped-def]
    def reset() -> None:
        Incident.objects.all().delete()
        Alert.objects.filter(key__startswith="incident:").delete()
        Notification.objects.filter(kind="runtime").delete()
        RuleSetting.objects.filter(rule=RULE).update(for_s=for_s)

    committed(django_db_blocker, reset)


def test_two_evaluations_racing_to_open_and_fire_notify_once(committed_queue, django_db_blocker):
    _reset(django_db_blocker, for_s=0)  # fires at once: both try to insert the incident
    results = race(django_db_blocker, NOW)
    assert sorted(r.triggers for r in results) == [0, 1]
    found = counts(django_db_blocker)
    assert found["routes"] >= 1
    assert found == {
        "incidents": 1,
        "firing": 1,
        "routes": found["routes"],
        "triggers": found["routes"],
        "alerts": 1,
        "notes": 1,
    }


def test_two_evaluations_racing_to_fire_a_pending_incident_notify_once(
    committed_queue, django_db_blocker
):
    _reset(django_db_blocker, for_s=30)
    opened = committed(django_db_blocker, lambda: rules_evaluate(now=NOW - timedelta(seconds=40)))
    assert opened.actions == {"open": 1}
    results = race(django_db_blocker, NOW)
    assert sorted(r.triggers for r in results) == [0, 1]
    assert sorted(tuple(r.actions) for r in results) == [("fire",), ("stay",)]
    found = counts(django_db_blocker)
    assert (found["incidents"], found["firing"], found["alerts"]) == (1, 1, 1)
    assert found["triggers"] == found["routes"]
