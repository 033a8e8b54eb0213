"""metrics_ingest: one transaction across schemas (nothing half-stored), and the counter state
kept on the series between requests."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone
from django_tenants.utils import schema_context

from runtime.domain.metrics import metrics_flatten
from runtime.models import MetricMinute, MetricPoint, MetricSeries
from runtime.services.metrics import metrics_ingest
from runtime.tests.otlp_metrics import SECOND, T0, number_request

pytestmark = pytest.mark.django_db


def test_a_failure_in_one_schema_stores_nothing_anywhere(alpha):
    """A platform batch for alpha and for the platform: the public schema's insert fails (a
    trigger stands in for a full disk), so alpha's points, stored first, are rolled back too."""
    batch = metrics_flatten(
        number_request("queue_depth", [(0, T0, 1.0)], kind="gauge", labels={"tenant_id": "alpha"})
    )
    platform = metrics_flatten(number_request("queue_depth", [(0, T0, 2.0)], kind="gauge"))
    both = type(batch)(batch.points + platform.points, [], (), ())
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON public.runtime_metricpoint "
            "FOR EACH ROW EXECUTE FUNCTION public.refuse()"
        )
    with pytest.raises(DatabaseError, match="disk full"):
        metrics_ingest(batch=both, host_tenant=None, now=timezone.now())
    for schema in (alpha.schema, "public"):
        with schema_context(schema):
            assert not MetricSeries.objects.exists()
            assert not MetricPoint.objects.exists()
            assert not MetricMinute.objects.exists()


def test_counter_state_is_kept_on_the_series(alpha):
    start = T0 - 10 * SECOND
    with schema_context(alpha.schema):
        for value, at in ((4.0, T0), (9.0, T0 + SECOND)):
            batch = metrics_flatten(number_request("retries_total", [(start, at, value)]))
            metrics_ingest(batch=batch, host_tenant=alpha.tenant, now=timezone.now())
        series = MetricSeries.objects.get()
        assert (series.last_value, series.last_time.timestamp()) == (9.0, (T0 + SECOND) / 1e9)
        assert series.last_start.timestamp() == start / 1e9
        assert list(MetricPoint.objects.order_by("time").values_list("value", flat=True)) == [4, 5]
