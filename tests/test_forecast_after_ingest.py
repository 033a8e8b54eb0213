"""A back-fill gets its forecast without the beat: the ingest's ``usage_stored`` signal makes
billing enqueue one refresh per tenant (debounced, 30 s), run by a real worker in the tenant's
schema.

The back-fill is committed on a connection of its own (the worker cannot see the test's
transaction) and removed at the end. Not a ``transaction=True`` test: its flush would empty every
public table, the session's tenants among them, under the worker tests that run after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections
from django_tenants.utils import schema_context

from billing import services
from billing.models import CostForecast
from billing.tests.test_services_forecast_refresh import backfill
from factory_portal.celery import app
from tests.support import real_worker
from usage.models import LlmUsageEvent, Project

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Started before the test's transaction: a worker starting up closes the database
    connections of the thread that starts it."""
    app.conf.task_ignore_result = False
    with django_db_blocker.unblock(), real_worker() as running:
        yield running


def committed(django_db_blocker, work: Callable[[], None]) -> None:  # type: ignore[no-untyped-def]
    """``work()`` on a connection of its own, committed (its on-commit hooks run)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with django_db_blocker.unblock():
                work()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


def _cleanup(alpha) -> None:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        CostForecast.objects.all().delete()
        LlmUsageEvent.objects.all().delete()
        Project.objects.filter(slug__in=["checkout", "search"]).delete()


def test_backfill_is_forecast_after_the_debounce(
    worker, alpha, beta, monkeypatch, django_db_blocker
):
    monkeypatch.setattr(services, "FORECAST_DEBOUNCE_S", 2)
    try:
        committed(django_db_blocker, lambda: backfill(alpha))
        # A second batch in the window: still one refresh.
        committed(django_db_blocker, lambda: backfill(alpha, project="search"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with schema_context(alpha.schema):
                if CostForecast.objects.count() == 3:
                    break
            time.sleep(0.3)
        with schema_context(alpha.schema):
            assert set(CostForecast.objects.values_list("project", flat=True)) == {
                "",
                "checkout",
                "search",
            }
        with schema_context(beta.schema):
            assert not CostForecast.objects.exists()
    finally:
        committed(django_db_blocker, lambda: _cleanup(alpha))
