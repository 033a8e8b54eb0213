"""Run outcomes over time and the queue as runs and jobs see it: what the health pages read from
usage (the runtime app reads usage only through selectors). Runs are counted by when they
finished; durations are exact percentiles of finished runs' ``duration_ms`` (PostgreSQL's
``percentile_cont``), read on the finished-at index. Read only; the schema of the connection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q

from factory_portal.db_routing import read_connection
from usage.models import ACTIVE_RUN_STATUSES, FINISHED_RUN_STATUSES, Job, Run, RunStatus

QUANTILES = (0.5, 0.95, 0.99)
RUN_TABLE = Run._meta.db_table


@dataclass(frozen=True)
class OutcomeBucket:
    start: datetime
    by_status: dict[str, int] = field(default_factory=dict)
    failures_by_type: dict[str, int] = field(default_factory=dict)
    duration_ms: dict[float, float | None] = field(default_factory=dict)  # quantile → ms

    @property
    def finished(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class RunOutcomes:
    buckets: list[OutcomeBucket]

    @property
    def finished(self) -> int:
        return sum(b.finished for b in self.buckets)

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for bucket in self.buckets:
            for status, n in bucket.by_status.items():
                totals[status] += n
        return dict(totals)

    def failure_types(self) -> list[str]:
        totals: dict[str, int] = defaultdict(int)
        for bucket in self.buckets:
            for kind, n in bucket.failures_by_type.items():
                totals[kind] += n
        return sorted(totals, key=lambda kind: (-totals[kind], kind))


def run_outcomes(*, start: datetime, end: datetime, step: timedelta) -> RunOutcomes:
    """Runs that finished in [start, end) per step (buckets from ``start``): counts by status,
    failed runs by failure type ("unspecified" when none was given) and the p50/p95/p99 run
    duration of all finished runs. One query on the finished-at index (grouping sets: the counts
    per status and failure type, the percentiles per bucket), whatever the range."""
    if step <= timedelta(0) or end <= start:
        raise ValueError("run_outcomes needs a positive step and start < end.")
    count = int((end - start) / step)
    starts = [start + i * step for i in range(count)]
    by_status: dict[datetime, dict[str, int]] = defaultdict(dict)
    failures: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    durations: dict[datetime, dict[float, float | None]] = {}
    finished = set(FINISHED_RUN_STATUSES)
    with read_connection().cursor() as cursor:
        # A run has finished_at once it finished (the partial index holds only those rows).
        cursor.execute(
            f"""
            SELECT date_bin(%(step)s, finished_at, %(origin)s) AS bucket, status, failure_type,
                   count(*), percentile_cont(%(qs)s::float8[]) WITHIN GROUP (ORDER BY duration_ms),
                   GROUPING(status)
            FROM {RUN_TABLE}
            WHERE finished_at >= %(start)s AND finished_at < %(end)s
            GROUP BY GROUPING SETS ((1, 2, 3), (1))
            """,  # noqa: S608 - the table name is the model's; values are parameters
            {"step": step, "origin": start, "start": start, "end": end, "qs": list(QUANTILES)},
        )
        for bucket, status, failure_type, n, values, totals_row in cursor.fetchall():
            if totals_row:
                durations[bucket] = dict(zip(QUANTILES, values, strict=True))
            elif status in finished:
                by_status[bucket][status] = by_status[bucket].get(status, 0) + n
                if status == RunStatus.FAILED:
                    failures[bucket][failure_type or "unspecified"] += n
    return RunOutcomes(
        [
            OutcomeBucket(
                start=s,
                by_status=by_status.get(s, {}),
                failures_by_type=dict(failures.get(s, {})),
                duration_ms=durations.get(s, {}),
            )
            for s in starts
        ]
    )


def finished_run_counts(*, start: datetime, end: datetime) -> dict[str, int]:
    """Runs that finished in [start, end) by status (finished statuses only; absent: none), on
    the finished-at index: what the run failure-rate alert reads."""
    rows = (
        Run.objects.filter(
            finished_at__gte=start, finished_at__lt=end, status__in=FINISHED_RUN_STATUSES
        )
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["status"]: row["n"] for row in rows}


@dataclass(frozen=True)
class StepQueue:
    step_name: str
    waiting: int
    running: int


@dataclass(frozen=True)
class RunQueue:
    """The tenant's work in the queue: runs and jobs Requested (waiting) and Running."""

    runs_waiting: int
    runs_running: int
    oldest_waiting_since: datetime | None
    jobs_waiting: int
    jobs_running: int
    by_step: list[StepQueue]

    @property
    def empty(self) -> bool:
        return not (
            self.runs_waiting or self.runs_running or self.jobs_waiting or self.jobs_running
        )


STEP_LIMIT = 20
ACTIVE_RUNS_READ = 10_000  # active runs whose jobs are counted (the oldest first)


def run_queue() -> RunQueue:
    """Three queries on the active-runs index: runs by status with the oldest waiting, the ids
    of active runs (at most ``ACTIVE_RUNS_READ``), and their jobs by step and status through the
    job's run index (the busiest ``STEP_LIMIT`` steps listed)."""
    totals = Run.objects.filter(status__in=ACTIVE_RUN_STATUSES).aggregate(
        waiting=Count("id", filter=Q(status=RunStatus.REQUESTED)),
        running=Count("id", filter=Q(status=RunStatus.RUNNING)),
        oldest=Min("requested_at", filter=Q(status=RunStatus.REQUESTED)),
    )
    active = list(
        Run.objects.filter(status__in=ACTIVE_RUN_STATUSES)
        .order_by("requested_at")
        .values_list("id", flat=True)[:ACTIVE_RUNS_READ]
    )
    steps: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ACTIVE_RUN_STATUSES, 0))
    rows = (
        Job.objects.filter(run_id__in=active, status__in=ACTIVE_RUN_STATUSES)
        .values("step_name", "status")
        .annotate(n=Count("id"))
        .order_by()
        if active
        else []
    )
    for row in rows:
        steps[row["step_name"]][row["status"]] += row["n"]
    listed = sorted(steps.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return RunQueue(
        runs_waiting=totals["waiting"],
        runs_running=totals["running"],
        oldest_waiting_since=totals["oldest"],
        jobs_waiting=sum(s[RunStatus.REQUESTED] for s in steps.values()),
        jobs_running=sum(s[RunStatus.RUNNING] for s in steps.values()),
        by_step=[
            StepQueue(name, c[RunStatus.REQUESTED], c[RunStatus.RUNNING])
            for name, c in listed[:STEP_LIMIT]
        ],
    )
