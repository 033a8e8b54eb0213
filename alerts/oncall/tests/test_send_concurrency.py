"""Two senders of the same page at once, each on its own database connection, send it once: the
second finds the row locked (SKIP LOCKED) while the first waits for the receiver's answer.

The data is committed (threads cannot see the test's transaction) by a module fixture that removes
it again; this module holds only this test so nothing else sees the committed rows."""

from __future__ import annotations

import threading

import pytest
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Route
from alerts.oncall.services.pages import pages_create
from alerts.oncall.services.send import page_send
from alerts.oncall.tests.receivers import incident_make, receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def committed_page(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A pending page to a slow Slack receiver, committed in alpha."""
    with receiver("slack", delay_s=1.0) as slack:
        with django_db_blocker.unblock(), schema_context("alpha"):
            route = Route.objects.create(
                name="race", channel="slack", severities=["info"], target=slack.url
            )
            incident = incident_make(severity="info", labels={"queue_name": "race"})
            (page,) = pages_create(incident, "trigger")
        yield slack, page.pk
        with django_db_blocker.unblock(), schema_context("alpha"):
            Incident.objects.filter(pk=incident.pk).delete()
            route.delete()


def test_two_concurrent_senders_send_a_page_once(committed_page, django_db_blocker):
    slack, page_id = committed_page
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def sender() -> None:
        from django.db import connections

        try:
            with django_db_blocker.unblock(), schema_context("alpha"):
                barrier.wait()
                outcomes.append(page_send(page_id).status)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(slack.requests) == 1
    found: list[tuple[str, int]] = []

    def read() -> None:
        from django.db import connections

        with django_db_blocker.unblock(), schema_context("alpha"):
            found.extend(Page.objects.filter(pk=page_id).values_list("status", "attempts"))
        connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(30)
    assert found == [("sent", 1)]
