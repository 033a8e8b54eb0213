"""OTLP metrics throughput against a real server process, next to the raw COPY rate of the rows.

Usage (PostgreSQL as configured by DATABASE_URL):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/metrics.py [--requests 40]
        [--series 1000] [--points-per-series 5] [--clients 2] [--workers 2]

Creates a scratch tenant ``bench-metrics`` and an ingest key, starts gunicorn on a free loopback
port and sends ``requests`` OTLP protobuf requests the way a collector batches a factory's
exporters: ``series`` series (the seed's instruments over many queues, pools and workers: half
gauges, 30% cumulative counters, 20% histograms of 16 buckets; one Metric per instrument, as the
SDK encodes them), each with ``points-per-series`` points 10 s apart (1: the shape of one SDK
export; 20: a collector's batch); every request moves on in time, so counters keep increasing
and rollup rows are merged with the stored ones. Prints data points/s through ``/v1/metrics``
and the rate of a plain COPY of the same raw rows into a bare table with the columns of
``runtime_metricpoint``, and their ratio. Drops the tenant afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import post_batches  # noqa: E402  (needs ROOT on the path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

STEP_NS = 10 * 10**9
BOUNDS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]


def series_shapes(count: int) -> list[tuple[str, str, dict[str, str]]]:
    """(instrument, kind, labels) of ``count`` series: the seed's instruments and labels."""
    gauges = [
        ("queue_depth", lambda n: {"queue_name": f"q{n}", "priority": "high"}),
        ("jobs_in_queue", lambda n: {"job_type": f"type-{n}", "priority": "normal"}),
        ("worker_cpu_usage", lambda n: {"worker_pool": f"pool-{n % 8}", "worker_id": f"w{n}"}),
        ("worker_memory_usage", lambda n: {"worker_pool": f"pool-{n % 8}", "worker_id": f"w{n}"}),
        ("jobs_processing", lambda n: {"job_type": f"type-{n}", "worker_pool": f"p{n % 8}"}),
    ]
    sums = [
        ("worker_errors_total", lambda n: {"worker_pool": f"pool-{n % 8}", "error_type": f"e{n}"}),
        ("retries_total", lambda n: {"job_type": f"type-{n}", "attempt": str(n % 3 + 1)}),
        ("run_success_total", lambda n: {"template_recipe_id": f"t{n}", "tenant_id": "x"}),
    ]
    histograms = [
        ("job_duration_seconds", lambda n: {"job_type": f"type-{n}", "status": "ok"}),
        ("run_duration_seconds", lambda n: {"status": "ok", "template_recipe_id": f"t{n}"}),
    ]
    shapes = []
    for n in range(count):
        share = n % 10
        group, kind = (
            (gauges, "gauge")
            if share < 5
            else (sums, "sum")
            if share < 8
            else (
                histograms,
                "histogram",
            )
        )
        name, labels = group[n % len(group)]
        made = labels(n)
        made.pop("tenant_id", None)  # a tenant key's points name no tenant
        shapes.append((name, kind, made))
    return shapes


def request_body(
    shapes: list[tuple[str, str, dict[str, str]]], points: int, first_ns: int, start_ns: int
) -> tuple[bytes, list[tuple]]:
    """One protobuf request and the raw rows it stands for (for the COPY baseline)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

    rng = random.Random(first_ns)
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.extend(
        [
            KeyValue(key="service.name", value=AnyValue(string_value="factory-worker")),
            KeyValue(key="service.instance.id", value=AnyValue(string_value="bench-1")),
        ]
    )
    scope = resource.scope_metrics.add()
    rows: list[tuple] = []
    cumulative = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    elapsed_steps = (first_ns - start_ns) // STEP_NS
    instruments: dict[str, Any] = {}  # one Metric per instrument, its series as data points
    for index, (name, kind, labels) in enumerate(shapes):
        metric = instruments.get(name)
        if metric is None:
            metric = instruments[name] = scope.metrics.add(name=name)
        attrs = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items()]
        for step in range(points):
            at = first_ns + step * STEP_NS
            moment = datetime.fromtimestamp(at / 1e9, tz=UTC)
            total_steps = elapsed_steps + step + 1
            if kind == "gauge":
                value = rng.uniform(0, 100)
                metric.gauge.data_points.add(time_unix_nano=at, as_double=value, attributes=attrs)
                rows.append((index, moment, value, None, None, None, None, None, None, None))
            elif kind == "sum":
                metric.sum.aggregation_temporality = cumulative
                metric.sum.is_monotonic = True
                value = float(total_steps * 3)
                metric.sum.data_points.add(
                    start_time_unix_nano=start_ns,
                    time_unix_nano=at,
                    as_double=value,
                    attributes=attrs,
                )
                rows.append((index, moment, 3.0, value, None, None, None, None, None, None))
            else:
                metric.histogram.aggregation_temporality = cumulative
                counts = [total_steps] * (len(BOUNDS) + 1)
                metric.histogram.data_points.add(
                    start_time_unix_nano=start_ns,
                    time_unix_nano=at,
                    count=sum(counts),
                    sum=float(total_steps * 100),
                    bucket_counts=counts,
                    explicit_bounds=BOUNDS,
                    attributes=attrs,
                )
                rows.append(
                    (
                        index,
                        moment,
                        None,
                        None,
                        len(counts),
                        100.0,
                        None,
                        None,
                        BOUNDS,
                        [1] * len(counts),
                    )
                )
    return request.SerializeToString(), rows


def copy_rate(rows: list[tuple]) -> float:
    """Rows/s of a plain COPY of the raw rows into a bare table with runtime_metricpoint's
    columns (binary, as the receiver writes them)."""
    from django.db import connection

    from runtime.services.metrics import POINT_TYPES

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (series_id bigint, time timestamptz, value float8,"
            " total float8, count bigint, sum float8, min float8, max float8, bounds float8[],"
            " bucket_counts bigint[])"
        )
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(POINT_TYPES)
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points-per-series", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django_tenants.utils import schema_context

    from benchmarks.server import gunicorn
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from runtime.models import MetricMinute, MetricPoint, MetricSeries

    public_tenant_ensure()
    if (old := tenant_by_slug("bench-metrics")) is not None:
        tenant_delete(tenant=old)
    tenant = tenant_create(
        slug="bench-metrics", name="Benchmark", admin_email="b@bench.test"
    ).tenant
    with schema_context(tenant.schema_name):
        _, key = api_key_create(name="bench", scopes=["ingest"])
    host = f"bench-metrics.{settings.PORTAL_BASE_DOMAIN}"

    shapes = series_shapes(args.series)
    now_ns = time.time_ns()
    span_ns = args.points_per_series * STEP_NS
    start_ns = now_ns - (args.requests + 2) * span_ns
    warm, _ = request_body(shapes, 1, start_ns, start_ns)
    bodies, rows = [], []
    for n in range(args.requests):
        body, made = request_body(
            shapes, args.points_per_series, start_ns + (n + 1) * span_ns, start_ns
        )
        bodies.append(body)
        rows += made
    sent = len(rows)

    try:
        with gunicorn(workers=args.workers) as port:
            # warm-up: every series exists with its first cumulative point (the state later
            # requests count increases from), and each worker has imported everything
            post_batches(
                port,
                host,
                key,
                "/v1/metrics",
                [warm] * args.workers,
                "application/x-protobuf",
                args.workers,
            )
            seconds = post_batches(
                port, host, key, "/v1/metrics", bodies, "application/x-protobuf", args.clients
            )
        with schema_context(tenant.schema_name):
            stored = MetricPoint.objects.count() - args.series * args.workers  # warm-ups
            series = MetricSeries.objects.count()
            minutes = MetricMinute.objects.count()
            copy_rows_per_second = max(copy_rate(rows) for _ in range(3))
    finally:
        tenant_delete(tenant=tenant)

    http_rate = sent / seconds
    print(f"metric_points_sent {sent}")
    print(f"metric_points_stored {stored}")
    print(f"metric_series {series}")
    print(f"metric_minute_rows {minutes}")
    print(f"metric_points_per_request {args.series * args.points_per_series}")
    print(f"http_metric_points_per_second {http_rate:,.0f}")
    print(f"http_request_mean_seconds {seconds / len(bodies):.3f}")
    print(f"raw_copy_rows_per_second {copy_rows_per_second:,.0f}")
    print(f"http_to_copy_ratio {http_rate / copy_rows_per_second:.3f}")


if __name__ == "__main__":
    main()
