"""Runtime metrics for the page benchmark's big tenant: the seed's instruments with realistic
labels (4 queues, 6 job types, 3 worker pools of 8 workers: 132 series), raw points every 30 s
for the last 24 hours, 1-minute rollups for 14 days and 1-hour rollups for 30 days, plus
heartbeats — generated inside PostgreSQL (``generate_series``) in the current schema, as the
ingest would have stored them (see runtime/models.py). Call after ``django.setup()``."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta

QUEUES = ["build", "test", "deploy", "review"]
JOB_TYPES = ["plan", "codegen", "build", "test", "deploy", "review"]
POOLS = ["cpu", "gpu", "io"]
WORKERS = 8
BOUNDS = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0]


def _series() -> list[tuple[str, str, dict[str, str]]]:
    out: list[tuple[str, str, dict[str, str]]] = []
    for q in QUEUES:
        out += [("queue_depth", "gauge", {"queue_name": q, "priority": p}) for p in ("high", "low")]
        out += [("queue_processing_rate", "gauge", {"queue_name": q})]
        out += [("dlq_size", "gauge", {"queue_name": q})]
    for j in JOB_TYPES:
        out += [("jobs_in_queue", "gauge", {"job_type": j, "priority": p}) for p in ("high", "low")]
        out += [("jobs_processing", "gauge", {"job_type": j, "worker_pool": p}) for p in POOLS]
        out += [("retries_total", "sum", {"job_type": j, "attempt": a}) for a in ("2", "3")]
        out += [
            ("job_duration_seconds", "histogram", {"job_type": j, "status": status})
            for status in ("Succeeded", "Failed")
        ]
    for pool in POOLS:
        for w in range(WORKERS):
            worker = {"worker_pool": pool, "worker_id": f"{pool}-{w}"}
            out += [("worker_cpu_usage", "gauge", worker), ("worker_memory_usage", "gauge", worker)]
        out += [
            ("worker_errors_total", "sum", {"worker_pool": pool, "error_type": kind})
            for kind in ("timeout", "oom", "database_error", "crash")
        ]
    out += [("run_duration_seconds", "histogram", {"status": s}) for s in ("Succeeded", "Failed")]
    return out


# Values as SQL of the bucket time ``g`` and the series id ``s.id``: daily waves plus noise.
_WAVE = "(1 + 0.6 * sin(extract(epoch from g) / 13751.0 + s.id))"
_GAUGE = f"greatest(0, 20 * {_WAVE} + 5 * random())"
_INCREASE = f"floor(3 * {_WAVE} * random())"
_COUNTS = "ARRAY[0, 1, 3, 8, 15, 20, 12, 6, 3, 1, 1, 0, 0]::bigint[]"  # a job-duration shape


def runtime_series_seed(*, now: datetime) -> None:
    """Seed the current schema's runtime tables in one transaction, ending at ``now`` (skipped
    when its newest raw point is less than 10 minutes old)."""
    from django.db import connection, transaction

    from runtime.models import Heartbeat, MetricPoint, MetricSeries

    newest = MetricPoint.objects.order_by("-time").values_list("time", flat=True).first()
    if newest is not None and newest > now - timedelta(minutes=10):
        return  # seeded recently (with --reuse): the pages see live figures
    with transaction.atomic():
        MetricSeries.objects.all().delete()  # points and rollups go with their series
        Heartbeat.objects.all().delete()
        _seed(now)
    with connection.cursor() as cursor:  # what autovacuum does soon after ingest
        cursor.execute(
            "VACUUM ANALYZE runtime_metricpoint, runtime_metricminute, runtime_metrichour"
        )


def _seed(now: datetime) -> None:
    from django.db import connection

    from runtime.models import MetricSeries

    started = time.perf_counter()
    rows = []
    for name, kind, labels in _series():
        key = hashlib.sha256(json.dumps([name, kind, labels], sort_keys=True).encode()).hexdigest()
        rows.append(
            MetricSeries(
                key=key,
                name=name,
                kind=kind,
                category="runtime",
                monotonic=kind == "sum",
                labels=labels,
                first_seen=now - timedelta(days=30),
                last_seen=now,
            )
        )
    MetricSeries.objects.bulk_create(rows)
    end = now.replace(second=0, microsecond=0)
    spans = {
        "runtime_metricpoint": (end - timedelta(hours=24), end, "30 seconds", "time"),
        "runtime_metricminute": (end - timedelta(days=14), end, "1 minute", "start"),
        "runtime_metrichour": (
            end.replace(minute=0) - timedelta(days=30),
            end.replace(minute=0),
            "1 hour",
            "start",
        ),
    }
    with connection.cursor() as cursor:
        for table, (start, stop, step, column) in spans.items():
            raw = table == "runtime_metricpoint"
            samples = {
                "runtime_metricpoint": 1,
                "runtime_metricminute": 2,
                "runtime_metrichour": 120,
            }
            n = samples[table]
            gauge = (
                f"(series_id, {column}, value) SELECT s.id, g, {_GAUGE}"
                if raw
                else f"(series_id, {column}, samples, min, max, total, last, last_time)"
                f" SELECT s.id, g, {n}, {_GAUGE} * 0.8, {_GAUGE} * 1.2, {n} * {_GAUGE},"
                f" {_GAUGE}, g"
            )
            counter = (
                f"(series_id, {column}, value, total) SELECT s.id, g, {_INCREASE} * {n}, 0"
                if raw
                else f"(series_id, {column}, samples, increase)"
                f" SELECT s.id, g, {n}, {_INCREASE} * {n}"
            )
            hist_cols = "count, sum, bounds, bucket_counts"
            histogram = (
                f"(series_id, {column}, {hist_cols}{'' if raw else ', samples'}) SELECT s.id, g,"  # noqa: S608
                f" 70 * {n}, 2000.0 * {n}, %(bounds)s::float8[],"
                f" (SELECT array_agg(c * {n} + floor(random() * 3)::bigint ORDER BY i)"
                f"  FROM unnest({_COUNTS}) WITH ORDINALITY AS u(c, i))"
                f"{'' if raw else f', {n}'}"
            )
            for kind, insert in (("gauge", gauge), ("sum", counter), ("histogram", histogram)):
                cursor.execute(
                    f"INSERT INTO {table} {insert} FROM runtime_metricseries s,"
                    f" generate_series(%(start)s::timestamptz, %(stop)s::timestamptz - interval"
                    f" '{step}', interval '{step}') AS g WHERE s.kind = %(kind)s"
                    # Time-major, as ingest writes them: a series' rows are spread out.
                    " ORDER BY g, s.id",
                    {"start": start, "stop": stop, "kind": kind, "bounds": BOUNDS},
                )
        services = ["factory-control-plane", "factory-scheduler", "factory-postgres"] + [
            f"factory-worker-{p}" for p in POOLS
        ]
        for service in services:
            cursor.execute(
                "INSERT INTO runtime_heartbeat (service, instance, signal, first_seen, last_seen)"
                " VALUES (%s, 'i-1', 'metrics', %s, %s)",
                [service, now - timedelta(days=30), now - timedelta(seconds=20)],
            )
    print(f"runtime_series {len(rows)}")
    print(f"runtime_series_seed_seconds {time.perf_counter() - started:.1f}")
