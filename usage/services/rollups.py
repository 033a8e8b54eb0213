"""Rollups: the run rollup's, the step rollup's and the run ledger's job-time bookkeeping, and
rebuilding every rollup and the ledger from raw rows.

Event rollups, the ledger's usage and the step rollup's calls are maintained in SQL by
``usage.services.ingest``, the error groups' daily rollup by ``usage.services.errors``;
``RunDaily``, ``StepDaily`` and the ledger's job time are maintained
here from the before/after states of each changed run and job. Days are the tenant's local days
(its time zone, passed in). ``rollups_rebuild`` recomputes everything from the raw tables (after
a bulk load such as the demo seed, after a change of time zone, or to repair).
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.dispatch import receiver

from factory_portal import periods
from factory_portal.pg import prepared_cursor
from factory_portal.tenants.signals import timezone_changed
from usage.domain import durations
from usage.domain.runs import TERMINAL
from usage.domain.steps import UNSPECIFIED_FAILURE, StepFigures
from usage.models import InfraUsageHourly, LlmUsageHourly, RunDaily, StepDaily

RollupKey = tuple[date, int, str, str, str]  # day, project id, run type, template, status


@dataclass
class RollupDelta:
    runs: int = 0
    duration_ms_total: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * durations.BUCKETS)
    lead_time_histogram: list[int] = field(default_factory=lambda: [0] * durations.BUCKETS)

    def is_zero(self) -> bool:
        return (
            not self.runs
            and not self.duration_ms_total
            and not any(self.histogram)
            and not any(self.lead_time_histogram)
        )


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
        finished_at: datetime | None = None,
    ) -> None:
        key = (requested_at.astimezone(self._zone).date(), project_id, run_type, template, status)
        delta = self._deltas[key]
        delta.runs += sign
        if status in TERMINAL and duration_ms is not None:
            delta.duration_ms_total += sign * duration_ms
            delta.histogram[durations.bucket_of(duration_ms)] += sign
        lead_ms = lead_time_ms(requested_at, finished_at) if status in TERMINAL else None
        if lead_ms is not None:
            delta.lead_time_histogram[durations.bucket_of(lead_ms)] += sign

    def apply(self) -> None:
        """Write the ledger's job time, then the ``RunDaily`` counts. Every ingest path takes
        these rows in one order (the run ledger, then ``StepDaily``, then ``RunDaily``; keys
        sorted within each table), so an events batch and a lifecycle batch never deadlock."""
        self.apply_ledger()
        self.apply_counts()

    def apply_ledger(self) -> None:
        """Write the ledger's job time in one upsert, rows in key order."""
        job_ms = sorted((k, ms) for k, ms in self._job_ms.items() if ms)
        if job_ms:
            stripe = rollup_stripe()
            with prepared_cursor() as cursor:
                cursor.execute(
                    "INSERT INTO usage_runledger (run_id, day, job_ms, stripe)"
                    " SELECT *, %s FROM unnest(%s::bigint[], %s::date[], %s::bigint[])"
                    " ON CONFLICT (run_id, day, stripe)"
                    " DO UPDATE SET job_ms = usage_runledger.job_ms + EXCLUDED.job_ms",
                    [
                        stripe,
                        [k[0] for k, _ in job_ms],
                        [k[1] for k, _ in job_ms],
                        [ms for _, ms in job_ms],
                    ],
                )
        self._job_ms.clear()

    def apply_counts(self) -> None:
        """Write the ``RunDaily`` deltas in one upsert, locking rollup rows in key order (no
        deadlocks between batches)."""
        keys = sorted(k for k, d in self._deltas.items() if not d.is_zero())
        if keys:
            deltas = [self._deltas[k] for k in keys]
            with prepared_cursor() as cursor:
                cursor.execute(
                    RUN_DAILY_UPSERT,
                    [
                        *([k[n] for k in keys] for n in range(5)),
                        [d.runs for d in deltas],
                        [d.duration_ms_total for d in deltas],
                        [_array_text(d.histogram) for d in deltas],
                        [_array_text(d.lead_time_histogram) for d in deltas],
                    ],
                )
        self._deltas.clear()


def _histogram_sum(column: str) -> str:
    """SQL: the stored histogram ``column`` plus the new row's, bucket by bucket (the shorter
    one taken as zeros, as ``_padded`` does)."""
    return (
        f"{column} = (SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY i)"  # noqa: S608 - fixed names
        f" FROM unnest(usage_rundaily.{column}, EXCLUDED.{column}) WITH ORDINALITY AS u(a, b, i))"
    )


# One statement for a batch's run rollup changes (rows in key order; histograms sent as array
# literals, one per row).
RUN_DAILY_UPSERT = f"""
INSERT INTO usage_rundaily (day, project_id, run_type, template, status, runs, duration_ms_total,
    duration_histogram, lead_time_histogram)
SELECT d, p, rt, tp, st, n, ms, h::bigint[], l::bigint[]
FROM unnest(%s::date[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[],
    %s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS x(d, p, rt, tp, st, n, ms, h, l, o)
ORDER BY o
ON CONFLICT (day, project_id, run_type, template, status) DO UPDATE SET
    runs = usage_rundaily.runs + EXCLUDED.runs,
    duration_ms_total = usage_rundaily.duration_ms_total + EXCLUDED.duration_ms_total,
    {_histogram_sum("duration_histogram")},
    {_histogram_sum("lead_time_histogram")}
"""  # noqa: S608 - fixed names


def _array_text(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _padded(histogram: list[int]) -> list[int]:
    return list(histogram) + [0] * (durations.BUCKETS - len(histogram))


def lead_time_ms(requested_at: datetime, finished_at: datetime | None) -> int | None:
    """A finished run's lead time (requested -> finished) in ms; None when unknown."""
    if finished_at is None or finished_at < requested_at:
        return None
    return (finished_at - requested_at) // timedelta(milliseconds=1)


StepKey = tuple[date, str, str]  # the run's local day requested, template, step name


# Stripes of the shared rollup rows that every ingest batch adds to: the step rollup (a day's
# template and step) and the run ledger (a run's day). With one row per key, concurrent batches
# queued behind each other's row locks until each committed (under mixed load most ingest
# backends waited there, seconds at a time). A transaction takes the lowest free stripe with a
# transaction-scoped advisory lock and writes only that stripe's rows of both tables; more
# stripes than the server has request threads, so a free one is found. Readers sum a
# key's rows.
ROLLUP_STRIPES = 32
_STRIPE_LOCK = "hashtext(current_schema() || ':rollup-stripe')"
_STRIPE_FREE = (
    "SELECT k FROM generate_series(0, %s - 1) AS k"  # noqa: S608 - fixed SQL
    f" WHERE pg_try_advisory_xact_lock({_STRIPE_LOCK}, k) LIMIT 1"
)


def rollup_stripe() -> int:
    """A stripe of the current schema's striped rollups (``StepDaily``, ``RunLedger``) that this
    transaction alone writes until it commits (the same one on every call while it is the lowest
    this transaction can hold). Never waits: with every stripe taken, one is shared."""
    if not connection.in_atomic_block:
        raise RuntimeError("rollup_stripe() holds a stripe until commit: call it in a transaction")
    with prepared_cursor() as cursor:
        cursor.execute(_STRIPE_FREE, [ROLLUP_STRIPES])
        row = cursor.fetchone()
    if row is not None:
        return int(row[0])
    # Every stripe busy (more writers than stripes; not seen in practice): share one without
    # its lock. Waiting for a stripe's lock could deadlock, since callers already hold row locks
    # (runs, jobs); sharing only brings back row-lock waits, in the one key order every writer
    # keeps, as before the stripes.
    return secrets.randbelow(ROLLUP_STRIPES)


class StepRollupDeltas:
    """Changes to ``StepDaily`` collected while runs and their jobs change: a run's figures per
    step (``usage.domain.steps.run_steps``) are taken out under its old day and template and put
    back under its new ones; applied once per batch, rows locked in key order."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._deltas: dict[StepKey, StepFigures] = defaultdict(StepFigures)

    def move(
        self,
        *,
        requested_at: datetime,
        template: str,
        steps: dict[str, StepFigures],
        sign: int,
    ) -> None:
        day = requested_at.astimezone(self._zone).date()
        for name, figures in steps.items():
            self._deltas[(day, template, name)].add(figures, sign)

    def add(self, key: StepKey, figures: StepFigures) -> None:
        """Add ``figures`` to the step rollup row of ``key`` as they are (no day computed)."""
        self._deltas[key].add(figures)

    def apply(self) -> None:
        """Two statements for the batch: lock (creating the missing ones) and read the rows of
        this transaction's stripe in key order, then write them back with the deltas added."""
        keys = sorted(k for k, d in self._deltas.items() if not d.is_zero())
        if not keys:
            return
        stripe = rollup_stripe()
        with prepared_cursor() as cursor:
            cursor.execute(
                STEP_DAILY_LOCK,
                [
                    stripe,
                    _array_text([0] * durations.BUCKETS),
                    *([k[n] for k in keys] for n in range(3)),
                ],
            )
            rows = {(row[1], row[2], row[3]): row for row in cursor.fetchall()}
            written = []
            for key in keys:
                row = rows[key]
                current = step_row_figures(row)
                current.add(self._deltas[key])
                written.append((row[0], current))
            cursor.execute(
                STEP_DAILY_WRITE,
                [
                    [pk for pk, _ in written],
                    *([getattr(f, name) for _, f in written] for name in StepFigures.COUNTS),
                    [_array_text(f.histogram) for _, f in written],
                    [json.dumps(f.failure_types) for _, f in written],
                    [f.cost for _, f in written],
                ],
            )
        self._deltas.clear()


def step_row_figures(row: tuple) -> StepFigures:
    """The figures of a step rollup row read as ``STEP_ROW`` lists its columns (id, day,
    template, step name, then the figures)."""
    counts = dict(zip(StepFigures.COUNTS, row[4:-3], strict=True))
    histogram, failure_types, cost = row[-3:]
    if isinstance(failure_types, str):
        failure_types = json.loads(failure_types)
    return StepFigures(
        **counts, histogram=_padded(histogram), failure_types=dict(failure_types), cost=cost
    )


_STEP_COUNTS = ", ".join(StepFigures.COUNTS)
STEP_ROW = f"id, day, template, step_name, {_STEP_COUNTS}, duration_histogram, failure_types, cost"
# Every key's row, locked in key order in one statement (the order of every ingest path): the
# missing ones are created empty, the others touched (``DO UPDATE`` is what locks and returns
# them; a ``SELECT ... FOR UPDATE`` after an insert of the missing ones would take the locks
# out of key order).
STEP_DAILY_LOCK = f"""
INSERT INTO usage_stepdaily (stripe, day, template, step_name, duration_histogram, failure_types)
SELECT %s, d, t, s, %s::bigint[], '{{}}'
FROM unnest(%s::date[], %s::text[], %s::text[]) WITH ORDINALITY AS k(d, t, s, o)
ORDER BY o
ON CONFLICT (day, template, step_name, stripe) DO UPDATE SET day = EXCLUDED.day
RETURNING {STEP_ROW}
"""  # noqa: S608 - fixed names
STEP_DAILY_WRITE = f"""
UPDATE usage_stepdaily AS s
SET {", ".join(f"{c} = v.{c}" for c in StepFigures.COUNTS)},
    duration_histogram = v.h::bigint[], failure_types = v.f::jsonb, cost = v.cost
FROM unnest(%s::bigint[], {", ".join("%s::bigint[]" for _ in StepFigures.COUNTS)}, %s::text[],
    %s::text[], %s::numeric[]) AS v(id, {_STEP_COUNTS}, h, f, cost)
WHERE s.id = v.id
"""  # noqa: S608 - fixed names


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


# The rollup from raw rows (all of them, or ``{where}``): a (group, day, run) is counted in
# ``day_runs`` in the row of its first stored error (lowest id).
DAILY_REBUILD = """
INSERT INTO usage_errorgroupdaily (fingerprint, day, template, step_name, errors, runs, day_runs,
    first_seen, last_seen)
SELECT fingerprint, day, template, step_name, count(*), count(DISTINCT run_id),
    count(*) FILTER (WHERE first), min(occurred_at), max(occurred_at)
FROM (
    SELECT fingerprint, day, template, step_name, run_id, occurred_at,
        row_number() OVER (PARTITION BY fingerprint, day, run_id ORDER BY id) = 1 AS first
    FROM (
        SELECT id, fingerprint, (occurred_at AT TIME ZONE %(zone)s)::date AS day, template,
            step_name, run_id, occurred_at
        FROM usage_spanerror {where}
    ) raw {day_filter}
) e
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""


def error_daily_rebuild(*, zone: ZoneInfo, keys: Iterable[tuple[str, date]] | None = None) -> None:
    """Recount ``ErrorGroupDaily`` from the stored errors with days in ``zone``: every row, or
    only the (fingerprint, day) pairs ``keys``. Inside the caller's transaction or its own."""
    params: dict[str, object] = {"zone": str(zone)}
    where = day_filter = ""
    with transaction.atomic(), connection.cursor() as cursor:
        if keys is None:
            cursor.execute("DELETE FROM usage_errorgroupdaily")
        else:
            pairs = sorted(set(keys))
            if not pairs:
                return
            days = [p[1] for p in pairs]
            low, high = periods.local_bounds(min(days), max(days) + timedelta(days=1), zone)
            params.update(prints=[p[0] for p in pairs], days=days, low=low, high=high)
            cursor.execute(
                "DELETE FROM usage_errorgroupdaily WHERE (fingerprint, day) IN"
                " (SELECT * FROM unnest(%(prints)s::text[], %(days)s::date[]))",
                params,
            )
            where = (
                "WHERE fingerprint = ANY(%(prints)s) AND occurred_at >= %(low)s"
                " AND occurred_at < %(high)s"
            )
            day_filter = (
                "WHERE (fingerprint, day) IN"
                " (SELECT * FROM unnest(%(prints)s::text[], %(days)s::date[]))"
            )
        cursor.execute(DAILY_REBUILD.format(where=where, day_filter=day_filter), params)


@receiver(timezone_changed, dispatch_uid="usage.rollups_rebuild")
def _timezone_changed(sender: object, **kwargs: object) -> None:
    """A tenant's days moved: count its stored usage again by the new zone. Refused (a
    ValidationError rolls the change back) once raw events the rollups count were dropped by
    retention: re-counting from the raw rows left would erase the older history."""
    retained_from = getattr(kwargs["tenant"], "raw_retained_from", None)
    if retained_from is not None and (
        LlmUsageHourly.objects.filter(hour__lt=retained_from).exists()
        or InfraUsageHourly.objects.filter(hour__lt=retained_from).exists()
    ):
        raise ValidationError(
            "The time zone cannot change any more: raw usage events before"
            f" {retained_from:%Y-%m-%d} are past retention, and the daily figures kept from them"
            " could not be counted again in another zone."
        )
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
            "usage_stepdaily",
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
            " template_recipe_id, status, duration_ms,"
            # Whole milliseconds cut down, as lead_time_ms counts them (a cast rounds: a run at
            # a histogram bucket's edge moved bucket when a time-zone change rebuilt the rollup)
            " CASE WHEN finished_at >= requested_at THEN"
            "  floor(extract(epoch FROM finished_at - requested_at) * 1000)::bigint END,"
            " count(*) FROM usage_run GROUP BY 1, 2, 3, 4, 5, 6, 7",
            params,
        )
        rows: dict[RollupKey, RollupDelta] = defaultdict(RollupDelta)
        for (
            day,
            project_id,
            run_type,
            template,
            status,
            duration_ms,
            lead_ms,
            n,
        ) in cursor.fetchall():
            delta = rows[(day, project_id, run_type, template, status)]
            delta.runs += n
            if status in TERMINAL and duration_ms is not None:
                delta.duration_ms_total += n * duration_ms
                delta.histogram[durations.bucket_of(duration_ms)] += n
            if status in TERMINAL and lead_ms is not None:
                delta.lead_time_histogram[durations.bucket_of(lead_ms)] += n
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
                    lead_time_histogram=d.lead_time_histogram,
                )
                for k, d in rows.items()
            ],
            batch_size=2000,
        )
        _steps_rebuild(cursor, params)
        # Migration 0007 recounts through here before 0008 creates the errors' rollup (which
        # 0008 fills itself).
        if "usage_errorgroupdaily" in connection.introspection.table_names(cursor):
            error_daily_rebuild(zone=zone)


# (run, step) pairs from the jobs, then summed per run's local day, template and step. A job's
# duration bucket is width_bucket over the buckets' starts (exactly ``durations.bucket_of``).
_STEP_PAIRS = """
CREATE TEMP TABLE step_pairs ON COMMIT DROP AS
SELECT (r.requested_at AT TIME ZONE %(zone)s)::date AS day, r.template_recipe_id AS template,
       j.step_name, j.run_id,
       count(*) AS attempts,
       count(*) - count(DISTINCT j.job_id) AS retries,
       count(*) FILTER (WHERE j.status IN ('Succeeded', 'Failed', 'Cancelled')) AS finished,
       count(*) FILTER (WHERE j.status = 'Failed') AS failed,
       coalesce(sum(j.duration_ms) FILTER (
           WHERE j.status IN ('Succeeded', 'Failed', 'Cancelled')), 0) AS duration_ms,
       bool_and(j.status IN ('Succeeded', 'Failed', 'Cancelled'))
           FILTER (WHERE j.attempt = f.first) AS settled,
       bool_and(j.status = 'Succeeded') FILTER (WHERE j.attempt = f.first) AS first_pass,
       bool_or(f.attempts > 1) AS reworked
FROM usage_job j
JOIN usage_run r ON r.id = j.run_id
JOIN (SELECT run_id, job_id, step_name, min(attempt) AS first, count(*) AS attempts
      FROM usage_job GROUP BY 1, 2, 3) f
  ON f.run_id = j.run_id AND f.job_id = j.job_id AND f.step_name = j.step_name
GROUP BY 1, 2, 3, 4
"""
# A job's attempts count under each attempt's step name, with the first attempt and the count
# of attempts of that name (``usage.domain.steps.run_steps``, what the rollup is kept by): taken
# over all of a job's attempts, a retry that named a step its first attempt had not named was
# neither settled nor first-pass here, so a time-zone change moved it (a review found it).
_STEP_ROWS = """
INSERT INTO usage_stepdaily (day, template, step_name, runs, settled, first_pass, reworked,
    attempts, retries, finished_attempts, failed_attempts, duration_ms_total, duration_histogram,
    failure_types, calls, cost)
SELECT day, template, step_name, count(*), count(*) FILTER (WHERE settled),
       count(*) FILTER (WHERE settled AND first_pass), count(*) FILTER (WHERE reworked),
       sum(attempts), sum(retries), sum(finished), sum(failed), sum(duration_ms), '{}', '{}', 0, 0
FROM step_pairs GROUP BY 1, 2, 3
"""
_STEP_BUCKETS = """
SELECT (r.requested_at AT TIME ZONE %(zone)s)::date, r.template_recipe_id, j.step_name,
       width_bucket(j.duration_ms, %(starts)s::bigint[]), count(*)
FROM usage_job j JOIN usage_run r ON r.id = j.run_id
WHERE j.status IN ('Succeeded', 'Failed', 'Cancelled') AND j.duration_ms IS NOT NULL
GROUP BY 1, 2, 3, 4
"""
_STEP_FAILURES = """
SELECT (r.requested_at AT TIME ZONE %(zone)s)::date, r.template_recipe_id, j.step_name,
       coalesce(nullif(j.failure_type, ''), %(unspecified)s), count(*)
FROM usage_job j JOIN usage_run r ON r.id = j.run_id
WHERE j.status = 'Failed'
GROUP BY 1, 2, 3, 4
"""
# Calls count under the step of the latest attempt of the job they name (by the client's id).
_STEP_CALLS = """
UPDATE usage_stepdaily s SET calls = x.calls, cost = x.cost
FROM (
    SELECT (r.requested_at AT TIME ZONE %(zone)s)::date AS day, r.template_recipe_id AS template,
           j.step_name, count(*) AS calls, coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0)
           AS cost
    FROM usage_llmusageevent e
    JOIN usage_run r ON r.id = e.run_id
    JOIN (SELECT DISTINCT ON (run_id, job_id) run_id, job_id, step_name FROM usage_job
          ORDER BY run_id, job_id, attempt DESC) j ON j.run_id = e.run_id AND j.job_id = e.job_ref
    LEFT JOIN (SELECT event_id, sum(delta) AS delta FROM usage_llmcostcorrection
               GROUP BY event_id) c ON c.event_id = e.event_id
    WHERE e.job_ref <> ''
    GROUP BY 1, 2, 3
) x
WHERE s.day = x.day AND s.template = x.template AND s.step_name = x.step_name
"""


def _steps_rebuild(cursor: CursorWrapper, params: dict[str, str]) -> None:
    """``StepDaily`` from the jobs and calls (inside ``rollups_rebuild``'s transaction)."""
    execute, fetch = cursor.execute, cursor.fetchall
    execute(_STEP_PAIRS, params)
    execute(_STEP_ROWS)
    execute("DROP TABLE step_pairs")
    histograms: dict[StepKey, list[int]] = defaultdict(lambda: [0] * durations.BUCKETS)
    execute(_STEP_BUCKETS, {**params, "starts": list(durations.BUCKET_STARTS_MS)})
    for day, template, step, bucket, n in fetch():
        histograms[(day, template, step)][bucket] += n
    failures: dict[StepKey, dict[str, int]] = defaultdict(dict)
    execute(_STEP_FAILURES, {**params, "unspecified": UNSPECIFIED_FAILURE})
    for day, template, step, kind, n in fetch():
        failures[(day, template, step)][kind] = n
    for key in sorted(set(histograms) | set(failures)):
        StepDaily.objects.filter(day=key[0], template=key[1], step_name=key[2]).update(
            duration_histogram=histograms.get(key, [0] * durations.BUCKETS),
            failure_types=failures.get(key, {}),
        )
    execute(_STEP_CALLS, params)
