"""Metric retention: the beat task deletes raw points, minute and hour rollups past their
retention in the public schema and, through a real Celery worker, in every tenant's schema."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.celery import app
from runtime.models import MetricHour, MetricMinute, MetricPoint, MetricSeries
from runtime.services.retention import metrics_retention
from runtime.tasks import metrics_retention_all
from tests.support import real_worker

pytestmark = pytest.mark.django_db(transaction=False)
SCHEMAS = ("public", "alpha", "beta")


def rows_make(schema: str, name: str) -> None:
    """Per table a row past retention and one inside it (raw 7 days, minutes 14, hours 400)."""
    now = timezone.now()
    with schema_context(schema):
        series = MetricSeries.objects.create(
            key=f"{name}-{schema}".ljust(64, "0"),
            name="queue_depth",
            kind="gauge",
            category="runtime",
            first_seen=now,
            last_seen=now,
        )
        for days in (8, 6):
            MetricPoint.objects.create(series=series, time=now - timedelta(days=days), value=1)
        for days in (15, 13):
            MetricMinute.objects.create(series=series, start=now - timedelta(days=days))
        for days in (401, 399):
            MetricHour.objects.create(series=series, start=now - timedelta(days=days))


def remaining(schema: str, name: str) -> tuple[int, int, int]:
    with schema_context(schema):
        series = MetricSeries.objects.get(key=f"{name}-{schema}".ljust(64, "0"))
        return (
            MetricPoint.objects.filter(series=series).count(),
            MetricMinute.objects.filter(series=series).count(),
            MetricHour.objects.filter(series=series).count(),
        )


def test_retention_deletes_old_rows_in_chunks(alpha):
    rows_make(alpha.schema, "chunks")
    with schema_context(alpha.schema):
        for _ in range(4):
            MetricPoint.objects.create(
                series=MetricSeries.objects.get(),
                time=timezone.now() - timedelta(days=30),
                value=2,
            )
        deleted = metrics_retention(now=timezone.now(), chunk=2)
    assert deleted == {
        "runtime_metricpoint": 5,
        "runtime_metricminute": 1,
        "runtime_metrichour": 1,
    }
    assert remaining(alpha.schema, "chunks") == (1, 1, 1)


def test_retention_follows_the_settings(beta):
    rows_make(beta.schema, "settings")
    with (
        override_settings(METRICS_RAW_RETENTION_DAYS=1, METRICS_HOUR_RETENTION_DAYS=1000),
        schema_context(beta.schema),
    ):
        metrics_retention(now=timezone.now())
    assert remaining(beta.schema, "settings") == (0, 1, 2)


@pytest.fixture(scope="module")
def committed_rows(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Rows committed in every schema (the worker has its own connection); removed after."""
    with django_db_blocker.unblock():
        for schema in SCHEMAS:
            rows_make(schema, "beat")
    yield
    with django_db_blocker.unblock():
        for schema in SCHEMAS:
            with schema_context(schema):
                MetricSeries.objects.filter(key__startswith="beat-").delete()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    app.conf.task_ignore_result = False
    with django_db_blocker.unblock(), real_worker() as running:
        yield running


def test_the_beat_task_runs_across_schemas(committed_rows, worker, alpha, beta):
    assert "runtime.tasks.metrics_retention_all" in {
        entry["task"] for entry in app.conf.beat_schedule.values()
    }
    assert metrics_retention_all.apply_async(ignore_result=False).get(timeout=30) >= 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(remaining(schema, "beat") == (1, 1, 1) for schema in SCHEMAS):
            break
        time.sleep(0.2)
    assert [remaining(schema, "beat") for schema in SCHEMAS] == [(1, 1, 1)] * 3
