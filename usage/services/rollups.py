"""Rollups: the run rollup's and the run ledger's job-time bookkeeping, and rebuilding every
rollup and the ledger from raw rows.

Event rollups and the ledger's usage are maintained in SQL by ``usage.services.ingest``;
``RunDaily`` and the ledger's job time are maintained here from the before/after states of each
changed run and job. Days are the tenant's local days (its time zone, passed in).
``rollups_rebuild`` recomputes everything from the raw tables (after a bulk load such as the
demo seed, after a change of time zone, or to repair).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.dispatch import receiver

from factory_portal import periods
from factory_portal.tenants.signals import timezone_changed
from usage.domain import durations
from usage.domain.runs import TERMINAL
from usage.models import RunDaily

RollupKey = tuple[date, int, str, str, str]  # day, project id, run type, template, status


@dataclass
class RollupDelta:
    runs: int = 0
    duration_ms_total: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * durations.BUCKETS)

    def is_zero(self) -> bool:
        return not self.runs and not self.duration_ms_total and not any(self.histogram)


class RunRollupDeltas:
    """Changes to ``RunDaily`` and to the ledger's job time collected while runs and jobs
    change, applied once per batch; days are local to ``zone``."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._deltas: dict[RollupKey, RollupDelta] = defaultdict(RollupDelta)
        self._job_ms: dict[tuple[int, date], int] = defaultdict(int)

    def job_time(
        self, *, run_pk: int, started_at: datetime | None, duration_ms: int | None, sign: int
    ) -> None:
        """Count (``sign`` 1) or uncount (-1) a job's run time on the day it started."""
        if started_at is not None and duration_ms:
            self._job_ms[(run_pk, started_at.astimezone(self._zone).date())] += sign * duration_ms

    def count(
        self,
        *,
        requested_at: datetime,
        project_id: int,
        run_type: str,
        template: str,
        status: str,
        duration_ms: int | None,
        sign: int,
    ) -> None:
        key = (requested_at.astimezone(self._zone).date(), project_id, run_type, template, status)
        delta = self._deltas[key]
        delta.runs += sign
        if status in TERMINAL and duration_ms is not None:
            delta.duration_ms_total += sign * duration_ms
            delta.histogram[durations.bucket_of(duration_ms)] += sign

    def apply(self) -> None:
        """Write the deltas, locking rollup rows in key order (no deadlocks between batches)."""
        for key in sorted(k for k, d in self._deltas.items() if not d.is_zero()):
            delta = self._deltas[key]
            day, project_id, run_type, template, status = key
            row, _ = RunDaily.objects.select_for_update().get_or_create(
                day=day,
                project_id=project_id,
                run_type=run_type,
                template=template,
                status=status,
                defaults={"duration_histogram": [0] * durations.BUCKETS},
            )
            row.runs += delta.runs
            row.duration_ms_total += delta.duration_ms_total
            row.duration_histogram = [
                a + b for a, b in zip(_padded(row.duration_histogram), delta.histogram, strict=True)
            ]
            row.save(update_fields=["runs", "duration_ms_total", "duration_histogram"])
        self._deltas.clear()
        job_ms = sorted((k, ms) for k, ms in self._job_ms.items() if ms)
        if job_ms:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO usage_runledger (run_id, day, job_ms)"
                    " SELECT * FROM unnest(%s::bigint[], %s::date[], %s::bigint[])"
                    " ON CONFLICT (run_id, day)"
                    " DO UPDATE SET job_ms = usage_runledger.job_ms + EXCLUDED.job_ms",
                    [
                        [k[0] for k, _ in job_ms],
                        [k[1] for k, _ in job_ms],
                        [ms for _, ms in job_ms],
                    ],
                )
        self._job_ms.clear()


def _padded(histogram: list[int]) -> list[int]:
    return list(histogram) + [0] * (durations.BUCKETS - len(histogram))


LLM_REBUILD = """
INSERT INTO usage_llmusage{grain} ({bucket_column}, project_id, provider, model, operation,
    run_type, template, calls, unpriced_calls, input_tokens, output_tokens, cached_input_tokens,
    cache_write_tokens, cost{latest_column})
SELECT {bucket}, e.project_id, e.provider, e.model, e.operation, e.run_type, e.template,
       count(*),
       count(*) FILTER (WHERE CASE WHEN c.event_id IS NULL THEN e.cost_source = 'unpriced'
                                   ELSE c.latest_cost IS NULL END),
       sum(e.input_tokens), sum(e.output_tokens), sum(e.cached_input_tokens),
       sum(e.cache_write_tokens), coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0){latest}
FROM usage_llmusageevent e
LEFT JOIN (
    -- re-pricing corrections: the cost change, and whether the call is priced now
    SELECT event_id, sum(delta) AS delta, (array_agg(new_cost ORDER BY id DESC))[1] AS latest_cost
    FROM usage_llmcostcorrection GROUP BY event_id
) c ON c.event_id = e.event_id
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
INFRA_REBUILD = """
INSERT INTO usage_infrausage{grain} ({bucket_column}, project_id, resource_type, unit, run_type,
    template, events, quantity{latest_column})
SELECT {bucket}, e.project_id, e.resource_type, e.unit, e.run_type, e.template, count(*),
       sum(e.quantity){latest}
FROM usage_infrausageevent e
GROUP BY 1, 2, 3, 4, 5, 6
"""
GRAINS = {  # grain: bucket column, bucket expression, freshness column
    "hourly": ("hour", "date_trunc('hour', e.occurred_at, 'UTC')", True),
    "daily": ("day", "(e.occurred_at AT TIME ZONE %(zone)s)::date", False),
}
LEDGER_REBUILD = """
INSERT INTO usage_runledger (run_id, day, calls, unpriced_calls, unpriced_tokens, input_tokens,
    output_tokens, cached_input_tokens, cache_write_tokens, cost, infra_events, cpu_seconds,
    gb_hours, job_ms)
SELECT run_id, day, sum(calls), sum(unpriced_calls), sum(unpriced_tokens), sum(input_tokens),
       sum(output_tokens), sum(cached_input_tokens), sum(cache_write_tokens), sum(cost),
       sum(infra_events), sum(cpu_seconds), sum(gb_hours), sum(job_ms)
FROM (
    SELECT e.run_id, (e.occurred_at AT TIME ZONE %(zone)s)::date AS day, count(*) AS calls,
           count(*) FILTER (WHERE CASE WHEN c.event_id IS NULL THEN e.cost_source = 'unpriced'
                                       ELSE c.latest_cost IS NULL END) AS unpriced_calls,
           coalesce(sum(e.input_tokens + e.output_tokens) FILTER (
               WHERE CASE WHEN c.event_id IS NULL THEN e.cost_source = 'unpriced'
                          ELSE c.latest_cost IS NULL END), 0) AS unpriced_tokens,
           sum(e.input_tokens) AS input_tokens, sum(e.output_tokens) AS output_tokens,
           sum(e.cached_input_tokens) AS cached_input_tokens,
           sum(e.cache_write_tokens) AS cache_write_tokens,
           coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0) AS cost,
           0 AS infra_events, 0 AS cpu_seconds, 0 AS gb_hours, 0 AS job_ms
    FROM usage_llmusageevent e
    LEFT JOIN (
        SELECT event_id, sum(delta) AS delta,
               (array_agg(new_cost ORDER BY id DESC))[1] AS latest_cost
        FROM usage_llmcostcorrection GROUP BY event_id
    ) c ON c.event_id = e.event_id
    WHERE e.run_id IS NOT NULL
    GROUP BY 1, 2
    UNION ALL
    SELECT run_id, (occurred_at AT TIME ZONE %(zone)s)::date, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
           coalesce(sum(quantity) FILTER (WHERE unit = 'cpu_seconds'), 0),
           coalesce(sum(quantity) FILTER (WHERE unit = 'gb_hours'), 0), 0
    FROM usage_infrausageevent WHERE run_id IS NOT NULL
    GROUP BY 1, 2
    UNION ALL
    SELECT run_id, (started_at AT TIME ZONE %(zone)s)::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           sum(duration_ms)
    FROM usage_job WHERE started_at IS NOT NULL AND duration_ms > 0
    GROUP BY 1, 2
) parts
GROUP BY 1, 2
"""


@receiver(timezone_changed, dispatch_uid="usage.rollups_rebuild")
def _timezone_changed(sender: object, **kwargs: object) -> None:
    """A tenant's days moved: count its stored usage again by the new zone."""
    rollups_rebuild(zone=periods.zone(str(getattr(kwargs["tenant"], "timezone", "UTC"))))


def rollups_rebuild(*, zone: ZoneInfo) -> None:
    """Recompute every rollup and the run ledger of the current schema from the raw rows,
    counting days in ``zone`` (the tenant's)."""
    params = {"zone": str(zone)}
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "usage_llmusagehourly",
            "usage_llmusagedaily",
            "usage_infrausagehourly",
            "usage_infrausagedaily",
            "usage_rundaily",
            "usage_runledger",
        ):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        cursor.execute(LEDGER_REBUILD, params)
        for grain, (column, bucket, freshness) in GRAINS.items():
            parts = {
                "grain": grain,
                "bucket_column": column,
                "bucket": bucket,
                "latest_column": ", last_occurred_at" if freshness else "",
                "latest": ", max(e.occurred_at)" if freshness else "",
            }
            cursor.execute(LLM_REBUILD.format(**parts), params)
            cursor.execute(INFRA_REBUILD.format(**parts), params)
        cursor.execute(
            "SELECT (requested_at AT TIME ZONE %(zone)s)::date, project_id, run_type,"
            " template_recipe_id, status, duration_ms, count(*) FROM usage_run"
            " GROUP BY 1, 2, 3, 4, 5, 6",
            params,
        )
        rows: dict[RollupKey, RollupDelta] = defaultdict(RollupDelta)
        for day, project_id, run_type, template, status, duration_ms, n in cursor.fetchall():
            delta = rows[(day, project_id, run_type, template, status)]
            delta.runs += n
            if status in TERMINAL and duration_ms is not None:
                delta.duration_ms_total += n * duration_ms
                delta.histogram[durations.bucket_of(duration_ms)] += n
        RunDaily.objects.bulk_create(
            [
                RunDaily(
                    day=k[0],
                    project_id=k[1],
                    run_type=k[2],
                    template=k[3],
                    status=k[4],
                    runs=d.runs,
                    duration_ms_total=d.duration_ms_total,
                    duration_histogram=d.histogram,
                )
                for k, d in rows.items()
            ],
            batch_size=2000,
        )
