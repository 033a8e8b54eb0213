"""A back-fill gets its forecast without the beat: the ingest's ``usage_stored`` signal makes
billing enqueue one refresh per tenant (debounced, 30 s), run by a real worker in the tenant's
schema."""

from __future__ import annotations

import time

import pytest
from django_tenants.utils import schema_context

from billing import services
from billing.models import CostForecast
from billing.tests.test_services_forecast_refresh import backfill
from factory_portal.celery import app
from tests.support import real_worker
from usage.models import LlmUsageEvent, Project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(django_db_blocker):  # type: ignore[no-untyped-def]
    app.conf.task_ignore_result = False
    with (
        django_db_blocker.unblock(),
        real_worker() as running,
    ):
        yield running


def test_backfill_is_forecast_after_the_debounce(worker, alpha, beta, monkeypatch, settings):
    monkeypatch.setattr(services, "FORECAST_DEBOUNCE_S", 2)
    try:
        backfill(alpha)
        backfill(alpha, project="search")  # a second batch in the window: still one refresh
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
        with schema_context(alpha.schema):
            CostForecast.objects.all().delete()
            LlmUsageEvent.objects.all().delete()
            Project.objects.filter(slug__in=["checkout", "search"]).delete()
