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

import functools
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
from factory_portal.tenants.selectors import active_tenants_by_slug, tenants_beyond_one_request
from runtime.domain.metrics import (
    GAUGE,
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
    interval_extremes,
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
        beyond, reason = tenants_beyond_one_request(tenants)
        for point in points:
            if not point.tenant:
                by_schema.setdefault(PUBLIC, []).append(point)
            elif (tenant := tenants.get(point.tenant)) is None:
                refuse(point, f"unknown or inactive tenant {point.tenant[:64]!r}")
            elif point.tenant in beyond:
                refuse(point, reason)
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
    # Scratch rows are emptied at commit: inside a caller's transaction they must be cleared first.
    nested = connection.in_atomic_block
    for attempt in range(1, attempts + 1):
        result = MetricsResult(rejected=list(batch.rejected))
        by_schema = _route(batch.points, host_tenant, result)
        try:
            with transaction.atomic():
                for n, schema in enumerate(sorted(by_schema)):  # one lock order
                    with schema_context(schema):
                        result.series += _store(by_schema[schema], now, clear=nested or n > 0)
                    result.schemas[schema] = len(by_schema[schema])
                    result.stored += len(by_schema[schema])
            return result
        except OperationalError as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            logger.info("metrics ingest conflicted with a concurrent batch; retrying")
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


SERIES_LOCK = """
SELECT id, key, (extract(epoch FROM last_start) * 1e6)::bigint,
       (extract(epoch FROM last_time) * 1e6)::bigint, last_value, last_sum, last_counts
FROM runtime_metricseries WHERE key = ANY(%s) ORDER BY key FOR UPDATE
"""
# Gauges and delta series keep no state: their ids only (the UPDATE of last_seen locks them).
SERIES_IDS = """
SELECT id, key, NULL::bigint, NULL::bigint, NULL::float8, NULL::float8, NULL::bigint[]
FROM runtime_metricseries WHERE key = ANY(%s)
"""
SERIES_INSERT = """
INSERT INTO runtime_metricseries
    (key, name, kind, category, unit, monotonic, labels, first_seen, last_seen)
SELECT k, n, kd, c, u, m, l::jsonb, f, f
FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[],
            %s::bool[], %s::text[], %s::timestamptz[]) AS i(k, n, kd, c, u, m, l, f)
ORDER BY k
ON CONFLICT (key) DO NOTHING
RETURNING id, key, NULL::bigint, NULL::bigint, last_value, last_sum, last_counts
"""
# Scratch tables of this session (emptied at commit): every series of the batch with when it was
# last seen and, for cumulative ones, the last point; the batch's minute (``hour`` false) and hour
# aggregates. Created once per connection (``IF NOT EXISTS`` in one round trip).
SCRATCH = """
CREATE TEMP TABLE IF NOT EXISTS runtime_series_in (
    id bigint, seen timestamptz, counted bool, start timestamptz, time timestamptz,
    value float8, sum float8, counts bigint[]
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS runtime_rollups_in (
    hour bool, series_id bigint, start timestamptz, samples bigint, min float8, max float8,
    total float8, last float8, last_time timestamptz, increase float8, count bigint, sum float8,
    bounds float8[], bucket_counts bigint[]
) ON COMMIT DELETE ROWS
"""
SCRATCH_CLEAR = ";\nTRUNCATE runtime_series_in, runtime_rollups_in"
SERIES_UPDATE = """
UPDATE runtime_metricseries AS s SET
    last_seen = GREATEST(s.last_seen, u.seen),
    first_seen = LEAST(s.first_seen, u.seen),
    last_start = CASE WHEN u.counted THEN u.start ELSE s.last_start END,
    last_time = CASE WHEN u.counted THEN u.time ELSE s.last_time END,
    last_value = CASE WHEN u.counted THEN u.value ELSE s.last_value END,
    last_sum = CASE WHEN u.counted THEN u.sum ELSE s.last_sum END,
    last_counts = CASE WHEN u.counted THEN u.counts ELSE s.last_counts END
FROM runtime_series_in AS u
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
    "bucket_counts) FROM STDIN"
)
ROLLUP_COPY = "COPY runtime_rollups_in FROM STDIN"

# The SQL twin of runtime.domain.metrics.rollup_merge: r is the stored row, EXCLUDED the batch's.
ROLLUP_UPSERT = """
INSERT INTO {table} AS r
    (series_id, start, samples, min, max, total, last, last_time, increase, count, sum, bounds,
     bucket_counts)
SELECT series_id, start, samples, min, max, total, last, last_time, increase, count, sum, bounds,
       bucket_counts
FROM runtime_rollups_in WHERE hour = {hour} ORDER BY series_id, start
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


def _state(row: tuple[Any, ...]) -> CounterState | None:
    """The series' last cumulative point (times read in microseconds, what PostgreSQL keeps)."""
    _, _, start_us, time_us, value, sum_, counts = row
    if time_us is None or value is None:
        return None
    return CounterState(
        start_ns=start_us * 1000 if start_us else 0,
        time_ns=time_us * 1000,
        value=value,
        sum=sum_,
        counts=tuple(counts) if counts is not None else None,
    )


def _series_rows(cursor: Any, by_key: dict[str, list[PointIn]]) -> list[tuple[Any, ...]]:
    """The series of ``by_key`` with their ids, created when new. Cumulative ones are locked (in
    key order) and come with their state: their increases are computed from it, so a concurrent
    request on the same counter waits until this one commits and then reads the state it left.
    Gauges and delta series keep no state and are not locked here."""
    counters = sorted(k for k, v in by_key.items() if v[0].series.cumulative)
    others = [k for k, v in by_key.items() if not v[0].series.cumulative]
    rows: list[tuple[Any, ...]] = []
    if counters:
        cursor.execute(SERIES_LOCK, [counters])
        rows += cursor.fetchall()
    if others:
        cursor.execute(SERIES_IDS, [others])
        rows += cursor.fetchall()
    if len(rows) == len(by_key):
        return rows
    found = {row[1] for row in rows}
    missing = sorted(k for k in by_key if k not in found)
    series = [by_key[k][0].series for k in missing]
    cursor.execute(
        SERIES_INSERT,
        [
            missing,
            [s.name for s in series],
            [s.kind for s in series],
            [s.category for s in series],
            [s.unit for s in series],
            [s.monotonic for s in series],
            [json.dumps(s.labels, default=str) for s in series],
            [ns_time(min(p.time_ns for p in by_key[k])) for k in missing],
        ],
    )
    rows += cursor.fetchall()
    made = {row[1] for row in rows}
    if raced := [k for k in missing if k not in made]:  # created by a concurrent request
        raced_counters = [k for k in raced if by_key[k][0].series.cumulative]
        if raced_counters:
            cursor.execute(SERIES_LOCK, [raced_counters])
            rows += cursor.fetchall()
        if raced_others := [k for k in raced if not by_key[k][0].series.cumulative]:
            cursor.execute(SERIES_IDS, [raced_others])
            rows += cursor.fetchall()
    return rows


def _store(points: list[PointIn], now: datetime, *, clear: bool = False) -> int:
    """Store ``points`` in the current schema; returns how many series they belong to.
    ``clear``: the scratch tables hold an earlier schema's rows of this transaction."""
    by_key = points_by(points)
    with connection.cursor() as cursor:
        rows = _series_rows(cursor, by_key)
        ids = {row[1]: row[0] for row in rows}
        counted: list[tuple[PointIn, Increase]] = []
        lines = []
        point_lines: list[str] = []
        for row in rows:
            series_id = row[0]
            series_points = by_key[row[1]]
            seen = _time_text(max(p.time_ns for p in series_points))
            if series_points[0].series.cumulative:
                before = _state(row)
                done, after = increases(before, series_points)
                if after is not None and after != before:
                    lines.append(
                        f"{series_id}\t{seen}\tt\t{_time_text(after.start_ns or None)}"
                        f"\t{_time_text(after.time_ns)}\t{_text(after.value)}"
                        f"\t{_text(after.sum)}\t{_array_text(after.counts)}\n"
                    )
                else:
                    lines.append(f"{series_id}\t{seen}\tf\t\\N\t\\N\t\\N\t\\N\t\\N\n")
            else:
                done = [(p, own_increase(p)) for p in series_points]
                lines.append(f"{series_id}\t{seen}\tf\t\\N\t\\N\t\\N\t\\N\t\\N\n")
            counted += done
            prefix = f"{series_id}\t"
            point_lines += [prefix + _point_text(p, i) for p, i in done]
        cursor.execute(SCRATCH + (SCRATCH_CLEAR if clear else ""))
        _copy(cursor, "COPY runtime_series_in FROM STDIN", "".join(lines))
        cursor.execute(SERIES_UPDATE)
        _copy(cursor, POINT_COPY, "".join(point_lines))
        singles: dict[int, Rollup] = {}  # a series' minute and hour are often one point
        minutes = rollups(counted, MINUTE_NS, singles)
        hours = rollups(counted, HOUR_NS, singles)
        tails: dict[int, str] = {}  # by id: every aggregate is alive until the COPY is done
        _copy(
            cursor,
            ROLLUP_COPY,
            "".join(
                f"{flag}\t{ids[key]}\t{_time_text(start)}\t{_rollup_tail(a, tails)}"
                for flag, aggregates in (("f", minutes), ("t", hours))
                for (key, start), a in aggregates.items()
            ),
        )
        cursor.execute(ROLLUP_UPSERT.format(table="runtime_metricminute", hour="false"))
        cursor.execute(ROLLUP_UPSERT.format(table="runtime_metrichour", hour="true"))
        services = sorted(
            {
                (v[0].series.service, v[0].series.instance)
                for v in by_key.values()
                if v[0].series.service
            }
        )
        if services:
            cursor.execute(
                HEARTBEAT_UPSERT,
                [now, now, [s for s, _ in services], [i for _, i in services]],
            )
    return len(by_key)


def _text(value: float | int | None) -> str:
    return "\\N" if value is None else repr(value)


@functools.lru_cache(maxsize=4096)
def _time_text(nanos: int | None) -> str:
    """A time as COPY text (an export's points share a few times: each is formatted once)."""
    return "\\N" if nanos is None else ns_time(nanos).isoformat()


def _array_text(values: tuple[Any, ...] | None) -> str:
    return "\\N" if values is None else "{" + ",".join(map(repr, values)) + "}"


@functools.lru_cache(maxsize=256)
def _bounds_text(bounds: tuple[float, ...] | None) -> str:
    """Bucket bounds as COPY text (a few distinct bounds: each is formatted once)."""
    return _array_text(bounds)


def _point_text(point: PointIn, increase: Increase) -> str:
    """A raw point as a line of COPY's text format after its series id (numbers and arrays
    only: nothing to escape)."""
    at = _time_text(point.time_ns)
    kind = point.series.kind
    if kind == GAUGE:
        return f"{at}\t{_text(point.value)}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
    if kind == SUM:
        value, total = _text(increase.value), _text(point.value)
        return f"{at}\t{value}\t{total}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
    buckets = increase.bucket_counts
    low, high = interval_extremes(point)
    return (
        f"{at}\t\\N\t\\N\t{_text(increase.count)}\t{_text(increase.sum)}"
        f"\t{_text(low)}\t{_text(high)}"
        f"\t{_bounds_text(point.bounds if buckets else None)}\t{_array_text(buckets)}\n"
    )


def _rollup_tail(a: Rollup, known: dict[int, str]) -> str:
    """An aggregate as the rest of a COPY line of ``runtime_rollups_in`` after the bucket start
    (``known``: those formatted already, by id)."""
    text = known.get(id(a))
    if text is None:
        text = known[id(a)] = (
            f"{a.samples}\t{_text(a.min)}\t{_text(a.max)}"
            f"\t{_text(a.total)}\t{_text(a.last)}\t{_time_text(a.last_time_ns)}"
            f"\t{_text(a.increase)}\t{_text(a.count)}\t{_text(a.sum)}"
            f"\t{_bounds_text(a.bounds)}\t{_array_text(a.bucket_counts)}\n"
        )
    return text


def _copy(cursor: Any, statement: str, text: str) -> None:
    """COPY ``text`` (COPY's text format) in; errors surface as Django's database errors, as
    they do for every other statement (a conflict is retried, an outage answered 503)."""
    with connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        copy.write(text)
