"""With a real Celery worker (not eager mode): a page written in a committed transaction is handed
to the worker after commit and reaches the receiver from the tenant's schema; and the beat's
sweeper (``pages_flush_all``, run in the public schema) sends the pages whose enqueue the broker
never got, the platform's own there and each tenant's in its schema.

The rows are committed (the worker has its own connection) and removed at the end of each test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Route
from alerts.oncall.services.pages import pages_create
from alerts.oncall.tasks import pages_flush_all
from alerts.oncall.tests.receivers import VendorReceiver, incident_make, receiver
from factory_portal.broker import broker_reset
from factory_portal.celery import app
from tests.support import broker_down, real_worker


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    app.conf.task_ignore_result = False
    with django_db_blocker.unblock(), real_worker() as running:
        yield running


def _wait_for(check: Callable[[], bool], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@contextmanager
def _committed(django_db_blocker, schemas: tuple[str, ...]) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Outside the test transaction; the routes and incidents made here are deleted after."""
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        with django_db_blocker.unblock():
            for schema in schemas:
                with schema_context(schema):
                    Incident.objects.filter(labels__queue_name__startswith="worker").delete()
                    Route.objects.filter(name__startswith="worker").delete()


def _page_to(slack: VendorReceiver, queue: str) -> int:
    """An info incident and a route that takes info (the default e-mail route does not)."""
    with transaction.atomic():
        Route.objects.create(
            name=f"worker {queue}", channel="slack", severities=["info"], target=slack.url
        )
        incident = incident_make(severity="info", labels={"queue_name": queue})
        (page,) = pages_create(incident, "trigger")
    return page.pk


def test_a_page_is_sent_by_the_worker_after_commit(worker, django_db_blocker):
    with receiver("slack") as slack, _committed(django_db_blocker, ("alpha",)):
        with schema_context("alpha"):
            page_id = _page_to(slack, "worker-commit")
        assert _wait_for(lambda: len(slack.requests) == 1)
        with schema_context("alpha"):
            assert _wait_for(lambda: Page.objects.get(pk=page_id).status == "sent")
    assert slack.requests[0]["text"].startswith("INFO: Queue depth high")


def test_the_beat_sweeper_sends_what_the_broker_never_got(worker, django_db_blocker):
    with receiver("slack") as slack, _committed(django_db_blocker, ("public", "alpha")):
        with broker_down():
            with schema_context("public"):
                platform_page = _page_to(slack, "worker-platform")
            with schema_context("alpha"):
                tenant_page = _page_to(slack, "worker-tenant")
        broker_reset()
        time.sleep(1)
        assert slack.requests == []  # nothing reached the worker
        pages_flush_all.apply_async()
        assert _wait_for(lambda: len(slack.requests) == 2)
        with schema_context("public"):
            assert Page.objects.get(pk=platform_page).status == "sent"
        with schema_context("alpha"):
            assert _wait_for(lambda: Page.objects.get(pk=tenant_page).status == "sent")
    sources = sorted(r["blocks"][1]["fields"][-1]["text"] for r in slack.requests)
    assert sources == ["*Workspace*\nAlpha Inc", "*Workspace*\nFactory Portal platform"]
