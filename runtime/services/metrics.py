"""Storing OTLP data points: routing to tenants, series, raw points, rollups and heartbeats.

``metrics_ingest`` is the only writer of the metric tables at ingest. A tenant's key writes to
its own schema only (a point naming another tenant is rejected); the platform key (operator host)
routes each point by its ``tenant_id`` label or its resource's ``tenant.id`` / ``run.tenant_id``:
no tenant is a platform series (public schema), an unknown or suspended tenant is rejected.

Everything of one request is one transaction across schemas (nothing half-stored), run again when
PostgreSQL aborts it for a deadlock with a concurrent request. Per schema: the series are upserted
in key order (the upsert takes their row locks, so two requests on one counter wait for each
other and the ``last_*`` state read is the committed one), cumulative points become increases
(``runtime.domain.metrics.increases``), raw points go in by COPY, and the batch's minute and hour
aggregates are merged into the rollup rows in SQL the way ``rollup_merge`` merges them, so points
arriving out of order within a bucket give the same rollup.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django_tenants.utils import schema_context

from factory_portal.errors import is_conflict
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import active_tenants_by_slug
from runtime.domain.metrics import (
    HISTOGRAM,
    HOUR_NS,
    MINUTE_NS,
    SUM,
    CounterState,
    Increase,
    MetricsBatch,
    PointIn,
    RejectedPoints,
    Rollup,
    increases,
    ns_time,
    own_increase,
    points_by,
    rollups,
)

logger = logging.getLogger(__name__)
PUBLIC = "public"


@dataclass
class MetricsResult:
    stored: int = 0
    series: int = 0
    rejected: list[RejectedPoints] = field(default_factory=list)
    schemas: dict[str, int] = field(default_factory=dict)  # points stored per schema

    @property
    def rejected_points(self) -> int:
        return sum(r.points for r in self.rejected)


def _route(
    points: Sequence[PointIn], host_tenant: Tenant | None, result: MetricsResult
) -> dict[str, list[PointIn]]:
    """Points by the schema they are stored in; the others are added to ``result.rejected``."""
    refused: dict[tuple[str, str], int] = {}

    def refuse(point: PointIn, reason: str) -> None:
        refused[(point.name, reason)] = refused.get((point.name, reason), 0) + 1

    by_schema: dict[str, list[PointIn]] = {}
    if host_tenant is not None:
        for point in points:
            if point.tenant and point.tenant != host_tenant.slug:
                refuse(
                    point,
                    f"the point names tenant {point.tenant[:64]!r} but was sent with a key of "
                    f"tenant {host_tenant.slug!r}",
                )
            else:
                by_schema.setdefault(host_tenant.schema_name, []).append(point)
    else:
        tenants = active_tenants_by_slug({p.tenant for p in points if p.tenant})
        for point in points:
            if not point.tenant:
                by_schema.setdefault(PUBLIC, []).append(point)
            elif (tenant := tenants.get(point.tenant)) is None:
                refuse(point, f"unknown or inactive tenant {point.tenant[:64]!r}")
            else:
                by_schema.setdefault(tenant.schema_name, []).append(point)
    result.rejected += [RejectedPoints(n, r, c) for (n, r), c in sorted(refused.items())]
    return by_schema


def metrics_ingest(
    *, batch: MetricsBatch, host_tenant: Tenant | None, now: datetime, attempts: int = 3
) -> MetricsResult:
    """Route and store ``batch``'s points (``host_tenant``: the tenant whose key sent them; None
    for the platform key on the operator host) in one transaction. The result counts what was
    stored and lists what was rejected, the batch's own rejections first."""
    for attempt in range(1, attempts + 1):
        result = MetricsResult(rejected=list(batch.rejected))
        by_schema = _route(batch.points, host_tenant, result)
        try:
            with transaction.atomic():
                for schema in sorted(by_schema):  # one lock order for concurrent requests
                    with schema_context(schema):
                        result.series += _store(by_schema[schema], now)
                    result.schemas[schema] = len(by_schema[schema])
                    result.stored += len(by_schema[schema])
            return result
        except OperationalError as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            logger.info("metrics ingest conflicted with a concurrent batch; retrying")
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


SERIES_UPSERT = """
INSERT INTO runtime_metricseries
    (key, name, kind, category, unit, monotonic, labels, first_seen, last_seen)
SELECT k, n, kd, c, u, m, l::jsonb, f, f
FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[],
            %s::bool[], %s::text[], %s::timestamptz[]) AS i(k, n, kd, c, u, m, l, f)
ORDER BY k
ON CONFLICT (key) DO UPDATE SET
    last_seen = GREATEST(runtime_metricseries.last_seen, EXCLUDED.last_seen),
    first_seen = LEAST(runtime_metricseries.first_seen, EXCLUDED.first_seen)
RETURNING id, key, last_start, last_time, last_value, last_sum, last_counts
"""

STATE_UPDATE = """
UPDATE runtime_metricseries AS s SET
    last_start = u.st, last_time = u.t, last_value = u.v, last_sum = u.su,
    last_counts = u.c::bigint[]
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::float8[], %s::float8[],
            %s::text[]) AS u(id, st, t, v, su, c)
WHERE s.id = u.id
"""

POINT_TYPES = [
    "bigint",
    "timestamptz",
    "double precision",
    "double precision",
    "bigint",
    "double precision",
    "double precision",
    "double precision",
    "double precision[]",
    "bigint[]",
]
POINT_COPY = (
    "COPY runtime_metricpoint (series_id, time, value, total, count, sum, min, max, bounds, "
    "bucket_counts) FROM STDIN (FORMAT BINARY)"
)

# The SQL twin of runtime.domain.metrics.rollup_merge: r is the stored row, EXCLUDED the batch's.
ROLLUP_UPSERT = """
INSERT INTO {table} AS r
    (series_id, start, samples, min, max, total, last, last_time, increase, count, sum, bounds,
     bucket_counts)
SELECT s, st, n, mi, ma, tot, la, lt, inc, c, su, b::float8[], bc::bigint[]
FROM unnest(%s::bigint[], %s::timestamptz[], %s::bigint[], %s::float8[], %s::float8[],
            %s::float8[], %s::float8[], %s::timestamptz[], %s::float8[], %s::bigint[],
            %s::float8[], %s::text[], %s::text[])
    AS i(s, st, n, mi, ma, tot, la, lt, inc, c, su, b, bc)
ORDER BY s, st
ON CONFLICT (series_id, start) DO UPDATE SET
    samples = r.samples + EXCLUDED.samples,
    min = LEAST(r.min, EXCLUDED.min),
    max = GREATEST(r.max, EXCLUDED.max),
    total = COALESCE(r.total + EXCLUDED.total, r.total, EXCLUDED.total),
    last = CASE WHEN r.last_time IS NULL
                  OR (EXCLUDED.last_time IS NOT NULL AND EXCLUDED.last_time >= r.last_time)
                THEN COALESCE(EXCLUDED.last, r.last) ELSE r.last END,
    last_time = GREATEST(r.last_time, EXCLUDED.last_time),
    increase = COALESCE(r.increase + EXCLUDED.increase, r.increase, EXCLUDED.increase),
    count = COALESCE(r.count + EXCLUDED.count, r.count, EXCLUDED.count),
    sum = COALESCE(r.sum + EXCLUDED.sum, r.sum, EXCLUDED.sum),
    bounds = CASE WHEN r.bucket_counts IS NULL THEN EXCLUDED.bounds ELSE r.bounds END,
    bucket_counts = CASE
        WHEN r.bucket_counts IS NULL THEN EXCLUDED.bucket_counts
        WHEN EXCLUDED.bucket_counts IS NULL OR r.bounds IS DISTINCT FROM EXCLUDED.bounds
            THEN r.bucket_counts
        ELSE ARRAY(SELECT x + y FROM unnest(r.bucket_counts, EXCLUDED.bucket_counts)
                   WITH ORDINALITY AS t(x, y, o) ORDER BY o)
    END
"""

HEARTBEAT_UPSERT = """
INSERT INTO runtime_heartbeat (service, instance, signal, first_seen, last_seen)
SELECT sv, inst, 'metrics', %s, %s
FROM unnest(%s::varchar[], %s::varchar[]) AS i(sv, inst)
ORDER BY sv, inst
ON CONFLICT (service, instance) DO UPDATE SET
    signal = 'metrics', last_seen = GREATEST(runtime_heartbeat.last_seen, EXCLUDED.last_seen)
"""


def _array(values: tuple[Any, ...] | None) -> str | None:
    return None if values is None else "{" + ",".join(repr(v) for v in values) + "}"


def _state(row: tuple[Any, ...]) -> CounterState | None:
    _, _, start, last_time, value, sum_, counts = row
    if last_time is None or value is None:
        return None
    return CounterState(
        start_ns=int(start.timestamp() * 1e9) if start else 0,
        time_ns=int(last_time.timestamp() * 1e9),
        value=value,
        sum=sum_,
        counts=tuple(counts) if counts is not None else None,
    )


def _store(points: list[PointIn], now: datetime) -> int:
    """Store ``points`` in the current schema; returns how many series they belong to."""
    by_key = points_by(points)
    keys = sorted(by_key)
    firsts = [by_key[k][0] for k in keys]
    with connection.cursor() as cursor:
        cursor.execute(
            SERIES_UPSERT,
            [
                keys,
                [p.name for p in firsts],
                [p.kind for p in firsts],
                [p.category for p in firsts],
                [p.unit for p in firsts],
                [p.monotonic for p in firsts],
                [json.dumps(p.labels, default=str) for p in firsts],
                [ns_time(max(q.time_ns for q in by_key[p.key])) for p in firsts],
            ],
        )
        rows = cursor.fetchall()
        ids = {row[1]: row[0] for row in rows}
        states = {row[1]: row for row in rows}

        counted: list[tuple[PointIn, Increase]] = []
        changed: list[tuple[int, CounterState]] = []
        for key in keys:
            series_points = by_key[key]
            first = series_points[0]
            if first.kind in (SUM, HISTOGRAM) and any(p.cumulative for p in series_points):
                before = _state(states[key])
                done, after = increases(before, series_points)
                counted += done
                if after is not None and after != before:
                    changed.append((ids[key], after))
            else:
                counted += [(p, own_increase(p)) for p in series_points]
        if changed:
            cursor.execute(
                STATE_UPDATE,
                [
                    [i for i, _ in changed],
                    [ns_time(s.start_ns) if s.start_ns else None for _, s in changed],
                    [ns_time(s.time_ns) for _, s in changed],
                    [s.value for _, s in changed],
                    [s.sum for _, s in changed],
                    [_array(s.counts) for _, s in changed],
                ],
            )
        with cursor.cursor.copy(POINT_COPY) as copy:
            copy.set_types(POINT_TYPES)
            for point, increase in counted:
                hist = point.kind == HISTOGRAM
                copy.write_row(
                    (
                        ids[point.key],
                        point.time,
                        increase.value if point.kind == SUM else point.value,
                        point.value if point.kind == SUM else None,
                        increase.count if hist else None,
                        increase.sum if hist else None,
                        point.min,
                        point.max,
                        list(point.bounds) if hist and increase.bucket_counts else None,
                        list(increase.bucket_counts) if increase.bucket_counts else None,
                    )
                )
        for table, width in (("runtime_metricminute", MINUTE_NS), ("runtime_metrichour", HOUR_NS)):
            _rollups_upsert(cursor, table, rollups(counted, width), ids)
        services = sorted({(p.service, p.instance) for p in points if p.service})
        if services:
            cursor.execute(
                HEARTBEAT_UPSERT,
                [now, now, [s for s, _ in services], [i for _, i in services]],
            )
    return len(keys)


def _rollups_upsert(
    cursor: Any, table: str, aggregates: dict[tuple[str, int], Rollup], ids: dict[str, int]
) -> None:
    slots = sorted(aggregates.items(), key=lambda item: (ids[item[0][0]], item[0][1]))
    values = [a for _, a in slots]
    cursor.execute(
        ROLLUP_UPSERT.format(table=table),
        [
            [ids[key] for (key, _), _ in slots],
            [ns_time(start) for (_, start), _ in slots],
            [a.samples for a in values],
            [a.min for a in values],
            [a.max for a in values],
            [a.total for a in values],
            [a.last for a in values],
            [ns_time(a.last_time_ns) if a.last_time_ns is not None else None for a in values],
            [a.increase for a in values],
            [a.count for a in values],
            [a.sum for a in values],
            [_array(a.bounds) for a in values],
            [_array(a.bucket_counts) for a in values],
        ],
    )
