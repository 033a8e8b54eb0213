"""metrics_ingest: one transaction across schemas (nothing half-stored), the counter state kept
on the series between requests, and two requests on one counter at once counting each increase
once."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, connections
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from runtime.domain.metrics import metrics_flatten
from runtime.models import Heartbeat, MetricMinute, MetricPoint, MetricSeries
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


CONCURRENT = {"worker_pool": "concurrency"}
CONCURRENT_SERVICE = {"service.name": "concurrency-test"}


def _concurrent_batch(step: int):
    """A counter point (value 10 per second since the start) and a gauge point at ``step`` s."""
    at = T0 + step * SECOND
    counter = metrics_flatten(
        number_request(
            "worker_errors_total",
            [(T0 - 100 * SECOND, at, float(10 * (step + 1)))],
            labels=CONCURRENT,
            resource=CONCURRENT_SERVICE,
        )
    )
    gauge = metrics_flatten(
        number_request(
            "queue_depth",
            [(0, at, float(step))],
            kind="gauge",
            labels=CONCURRENT,
            resource=CONCURRENT_SERVICE,
        )
    )
    return type(counter)(counter.points + gauge.points, [], (), ())


def test_two_requests_on_one_counter_count_each_increase_once(alpha):
    """Two connections send the same new counter and gauge at once, their points interleaved in
    time (even seconds and odd ones): the series is created once, each request on the counter
    waits for the other's lock and counts from the state it left, so the increases add up to the
    last value exactly (a request reading a state the other was changing would count twice), and
    a point older than the state adds nothing."""
    barrier = threading.Barrier(2)
    failures: list[Exception] = []

    def send(offset: int) -> None:
        try:
            with schema_context(alpha.schema):
                barrier.wait()
                for n in range(15):
                    batch = _concurrent_batch(2 * n + offset)
                    metrics_ingest(batch=batch, host_tenant=alpha.tenant, now=timezone.now())
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(offset,)) for offset in (0, 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        with schema_context(alpha.schema):
            counter = MetricSeries.objects.get(
                name="worker_errors_total", labels__worker_pool="concurrency"
            )
            assert counter.last_time.timestamp() == (T0 + 29 * SECOND) / 1e9
            assert counter.last_value == 300.0
            raw = MetricPoint.objects.filter(series=counter)
            assert raw.count() == 30
            assert raw.aggregate(n=Sum("value"))["n"] == 300.0
            minutes = MetricMinute.objects.filter(series=counter)
            assert minutes.aggregate(n=Sum("increase"))["n"] == 300.0
            gauge = MetricSeries.objects.get(name="queue_depth", labels__worker_pool="concurrency")
            assert gauge.last_seen.timestamp() == (T0 + 29 * SECOND) / 1e9
            gauge_minutes = MetricMinute.objects.filter(series=gauge)
            assert gauge_minutes.aggregate(n=Sum("samples"))["n"] == 30
            assert gauge_minutes.aggregate(n=Sum("total"))["n"] == sum(range(30))
    finally:
        # The threads committed: remove their rows from another committed connection (this
        # test's own transaction is rolled back, so deleting here would be undone).
        cleanup = threading.Thread(target=_remove_concurrent_rows, args=(alpha.schema,))
        cleanup.start()
        cleanup.join(30)


def _remove_concurrent_rows(schema: str) -> None:
    try:
        with schema_context(schema):
            MetricSeries.objects.filter(labels__worker_pool="concurrency").delete()
            Heartbeat.objects.filter(service="concurrency-test").delete()
    finally:
        connections.close_all()
