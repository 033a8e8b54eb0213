"""Rollups: the run rollup's bookkeeping, and rebuilding every rollup from raw rows.

Event rollups are maintained in SQL by ``usage.services.ingest``; ``RunDaily`` is maintained here
from the before/after states of each changed run. ``rollups_rebuild`` recomputes everything from
the raw tables (after a bulk load such as the demo seed, or to repair).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db import connection, transaction

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
    """Changes to ``RunDaily`` collected while runs change, applied once per batch."""

    def __init__(self) -> None:
        self._deltas: dict[RollupKey, RollupDelta] = defaultdict(RollupDelta)

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
        key = (requested_at.astimezone(UTC).date(), project_id, run_type, template, status)
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
    "daily": ("day", "(e.occurred_at AT TIME ZONE 'UTC')::date", False),
}


def rollups_rebuild() -> None:
    """Recompute every rollup of the current schema from the raw rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "usage_llmusagehourly",
            "usage_llmusagedaily",
            "usage_infrausagehourly",
            "usage_infrausagedaily",
            "usage_rundaily",
        ):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        for grain, (column, bucket, freshness) in GRAINS.items():
            parts = {
                "grain": grain,
                "bucket_column": column,
                "bucket": bucket,
                "latest_column": ", last_occurred_at" if freshness else "",
                "latest": ", max(e.occurred_at)" if freshness else "",
            }
            cursor.execute(LLM_REBUILD.format(**parts))
            cursor.execute(INFRA_REBUILD.format(**parts))
        cursor.execute(
            "SELECT (requested_at AT TIME ZONE 'UTC')::date, project_id, run_type,"
            " template_recipe_id, status, duration_ms, count(*) FROM usage_run"
            " GROUP BY 1, 2, 3, 4, 5, 6"
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
