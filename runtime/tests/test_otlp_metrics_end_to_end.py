"""End to end: the stock OpenTelemetry ``OTLPMetricExporter`` (OTLP/HTTP, protobuf) sends the
seed's instruments to a live portal server with a tenant key; the series, points and rollups are
read back from the tenant's schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django_tenants.utils import schema_context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.services import api_key_create
from runtime.models import Heartbeat, MetricHour, MetricPoint, MetricSeries

pytestmark = pytest.mark.django_db
SERVICE = "e2e-metrics-worker"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _serve(server) -> None:  # type: ignore[no-untyped-def]
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        connections.close_all()


@pytest.fixture(scope="module")
def portal(django_db_setup, django_db_blocker) -> Iterator[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """A live server and an ingest key of alpha (committed: the server has its own connection);
    what the server stored is deleted afterwards."""
    with django_db_blocker.unblock():
        with schema_context("alpha"):
            api_key, raw = api_key_create(name="e2e-metrics", scopes=["ingest"])
        server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
        thread = threading.Thread(target=_serve, args=(server,), daemon=True)
        thread.start()
        try:
            yield server.server_port, raw
        finally:
            server.shutdown()
            thread.join(10)
            with schema_context("alpha"):
                MetricSeries.objects.filter(labels__contains={"service.name": SERVICE}).delete()
                Heartbeat.objects.filter(service=SERVICE).delete()
                ApiKey.objects.filter(pk=api_key.pk).delete()


def test_stock_metric_exporter_to_live_server(portal):
    port, key = portal
    exporter = OTLPMetricExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/metrics",
        headers={"Authorization": f"Bearer {key}", "Host": f"alpha.localhost:{port}"},
        timeout=10,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": SERVICE, "service.instance.id": "w-7"}),
    )
    meter = provider.get_meter("factory")
    depth = meter.create_gauge("queue_depth")
    errors = meter.create_counter("worker_errors_total")
    durations = meter.create_histogram("job_duration_seconds", unit="s")
    depth.set(12, {"queue_name": "build", "priority": "high"})
    errors.add(2, {"worker_pool": "gpu", "error_type": "timeout"})
    for seconds in (1.5, 4, 40):
        durations.record(seconds, {"job_type": "test", "status": "ok"})
    assert provider.force_flush(10_000)
    errors.add(3, {"worker_pool": "gpu", "error_type": "timeout"})  # cumulative 5 next time
    durations.record(9, {"job_type": "test", "status": "ok"})
    assert provider.force_flush(10_000)
    provider.shutdown()

    with schema_context("alpha"):
        series = {
            s.name: s
            for s in MetricSeries.objects.filter(labels__contains={"service.name": SERVICE})
        }
        assert set(series) == {"queue_depth", "worker_errors_total", "job_duration_seconds"}
        increases = MetricPoint.objects.filter(series=series["worker_errors_total"]).order_by(
            "time"
        )
        # shutdown exported the unchanged counter once more: it adds nothing
        assert [(p.value, p.total) for p in increases] == [(2, 2), (3, 5), (0, 5)]
        hour = MetricHour.objects.get(series=series["job_duration_seconds"])
        assert hour.count == 4 and hour.sum == pytest.approx(54.5)
        assert sum(hour.bucket_counts) == 4
        assert Heartbeat.objects.get(service=SERVICE).instance == "w-7"
