"""Two people acknowledge the same alert at the same moment, each on their own database
connection: one acknowledgement counts, and PagerDuty gets one acknowledge event.

The incident is committed (threads cannot see the test's transaction) by a module fixture that
removes it again; this module holds only this test so nothing else sees the committed rows."""

from __future__ import annotations

import threading

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Route
from alerts.oncall.services.incidents import incident_acknowledge
from alerts.oncall.services.pages import pages_create
from alerts.oncall.tests.incident_rows import FAILURES, incident_make, pagerduty_route
from factory_portal import broker

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def committed_incident(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A firing critical incident whose trigger went to a PagerDuty route, committed in alpha."""
    from factory_portal.tenants.models import Tenant

    with django_db_blocker.unblock():
        schema = Tenant.objects.get(slug="alpha").schema_name
        with schema_context(schema):
            route = pagerduty_route(name="race route")
            incident = incident_make(FAILURES, {"race": "1"}, summary="race")
            broker._down_until = float("inf")  # the outbox rows are the point, not sending them
            try:
                pages_create(incident, Page.Event.TRIGGER)
            finally:
                broker.broker_reset()
    yield incident.pk
    with django_db_blocker.unblock(), schema_context(schema):
        Incident.objects.filter(pk=incident.pk).delete()  # its pages go with it
        Route.objects.filter(pk=route.pk).delete()


def test_two_concurrent_acknowledgements_count_once(
    committed_incident, alpha, django_db_blocker, monkeypatch
):
    # Nothing to hand to Celery in this test: the outbox rows are what it checks.
    monkeypatch.setattr(broker, "_down_until", float("inf"))
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def acknowledge(name: str) -> None:
        from django.db import connections

        try:
            with django_db_blocker.unblock(), schema_context(alpha.schema):
                barrier.wait()
                _, first = incident_acknowledge(
                    incident_id=committed_incident, by=name, now=timezone.now()
                )
                results[name] = first
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=acknowledge, args=(name,)) for name in ("ann@a.test", "bob@a.test")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results.values()) == [False, True]
    winner = next(name for name, first in results.items() if first)
    with django_db_blocker.unblock(), schema_context(alpha.schema):
        incident = Incident.objects.get(pk=committed_incident)
        acks = Page.objects.filter(incident=incident, event=Page.Event.ACKNOWLEDGE).count()
    assert incident.acknowledged_by == winner and acks == 1
