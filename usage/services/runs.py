"""Run lifecycle upserts in the current tenant schema, with the daily run rollup.

Runs of a batch are created (if new) and then locked in run-id order, so concurrent updates to the
same run serialise instead of overwriting each other; every update then goes through the state
machine in ``usage.domain.runs``. ``RunDaily`` always counts every run row once, under its current
status: a status change moves the run from one rollup row to another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Field

from factory_portal.observability import metrics
from factory_portal.observability.context import tenant_label
from factory_portal.pg import prepared_cursor
from factory_portal.tenants.connection import zone_for_writing
from usage.domain.runs import TERMINAL, JobState, RunState, RunUpdate, job_apply, run_apply
from usage.domain.steps import run_steps
from usage.models import Job, Run
from usage.services.ingest import IngestResult
from usage.services.references import projects_ensure, runs_ensure
from usage.services.rollups import RunRollupDeltas, StepRollupDeltas
from usage.signals import runs_finished

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The state machine's states are the rows' same-named columns; what it decides is copied back,
# all but the keys.
RUN_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(RunState))
JOB_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(JobState))
RUN_COPY_FIELDS = tuple(name for name in RUN_STATE_FIELDS if name != "run_id")
JOB_COPY_FIELDS = tuple(name for name in JOB_STATE_FIELDS if name not in ("job_id", "attempt"))


def _run_state(run: Run) -> RunState:
    return RunState(**{name: getattr(run, name) for name in RUN_STATE_FIELDS})


def _job_state(job: Job) -> JobState:
    values = {name: getattr(job, name) for name in JOB_STATE_FIELDS}
    values["updated_at"] = job.updated_at or job.finished_at or job.started_at or EPOCH
    return JobState(**values)


def runs_ingest(*, updates: Sequence[RunUpdate]) -> IngestResult:
    """Apply lifecycle updates (with their jobs) in the current schema, all or nothing. Updates
    that change nothing (re-sent or stale) are counted as duplicates. A run keeps the project it
    was first reported with."""
    if not updates:
        return IngestResult(0, 0)
    with transaction.atomic():
        zone = zone_for_writing()
        projects = projects_ensure(u.project for u in updates)
        first_seen: dict[str, tuple[int, datetime]] = {}
        for u in updates:
            at = u.requested_at or u.started_at or u.timestamp
            if u.run_id not in first_seen or at < first_seen[u.run_id][1]:
                first_seen[u.run_id] = (projects[u.project], at)
        deltas = RunRollupDeltas(zone)
        created: set[str] = set()
        runs_ensure(first_seen, zone=zone, deltas=deltas, created_ids=created)
        runs = {
            r.run_id: r
            for r in Run.objects.select_for_update()
            .filter(run_id__in=sorted(first_seen))
            .order_by("run_id")
        }
        jobs = _jobs_locked(runs.values())

        jobs_before = _jobs_by_run(jobs)
        steps_before = {
            run.id: (run.requested_at, run.template_recipe_id, jobs_before.get(run.id, []))
            for run in runs.values()
        }
        changed: list[Run] = []
        accepted = 0
        finished: list[Run] = []
        writes = _Writes()
        for update in sorted(updates, key=lambda u: (u.run_id, u.timestamp, u.position)):
            run = runs[update.run_id]
            before = _run_state(run)
            after = run_apply(before, update)
            jobs_changed = _jobs_apply(run, update, jobs, deltas, writes)
            # A run's first update made it (its stub is what "before" shows), so it counts; one
            # that only moves the time of the newest update (re-sent without a time, which is
            # then now) is kept but changes nothing anyone sees: a duplicate.
            first = update.run_id in created
            created.discard(update.run_id)
            if after == before and not jobs_changed:
                accepted += first
                continue
            if (
                first
                or jobs_changed
                or dataclasses.replace(after, updated_at=before.updated_at) != before
            ):
                accepted += 1
            changed.append(run)
            if after != before:
                _count(deltas, run.project_id, before, -1)
                for name in RUN_COPY_FIELDS:
                    setattr(run, name, getattr(after, name))
                writes.runs[run.pk] = run
                _count(deltas, run.project_id, after, 1)
                if after.status in TERMINAL and before.status != after.status:
                    finished.append(run)
        writes.save()
        # The lock order of every ingest path: run ledger, StepDaily, RunDaily (the events
        # statement upserts the ledger and StepDaily, then its new runs' RunDaily counts).
        deltas.apply_ledger()
        _steps_move(steps_before, changed, jobs, zone)
        deltas.apply_counts()
        if finished:
            runs_finished.send(sender=runs_ingest, run_ids=[r.pk for r in finished])
            tenant = tenant_label() or "public"
            outcomes = [(r.status, r.duration_ms) for r in finished]
            transaction.on_commit(
                lambda: metrics.guarded(
                    lambda: metrics.runs_finished_record(tenant=tenant, outcomes=outcomes)
                )
            )
    return IngestResult(accepted=accepted, duplicates=len(updates) - accepted)


def _count(deltas: RunRollupDeltas, project_id: int, state: RunState, sign: int) -> None:
    deltas.count(
        requested_at=state.requested_at,
        project_id=project_id,
        run_type=state.run_type,
        template=state.template_recipe_id,
        status=state.status,
        duration_ms=state.duration_ms,
        finished_at=state.finished_at,
        sign=sign,
    )


def _jobs_by_run(jobs: dict[tuple[int, str, int], Job]) -> dict[int, list[JobState]]:
    by_run: dict[int, list[JobState]] = {}
    for (run_pk, _, _), job in jobs.items():
        by_run.setdefault(run_pk, []).append(_job_state(job))
    return by_run


# Per run (a lateral read through the run index: a plain ``run_id = ANY(...)`` is planned from
# the average calls per run and turns into a scan of every call for a batch of new runs).
_CALLS_BY_JOB = """
SELECT r.id, x.job_ref, x.calls, x.cost
FROM unnest(%(runs)s::bigint[]) AS r(id)
CROSS JOIN LATERAL (
    SELECT e.job_ref, count(*) AS calls,
           coalesce(sum(e.cost), 0) + coalesce(sum((SELECT sum(c.delta)
               FROM usage_llmcostcorrection c WHERE c.event_id = e.event_id)), 0) AS cost
    FROM usage_llmusageevent e
    WHERE e.run_id = r.id AND e.job_ref <> ''
    GROUP BY e.job_ref
) x
"""


def _steps_move(
    before: dict[int, tuple[datetime, str, list[JobState]]],
    changed: list[Run],
    jobs: dict[tuple[int, str, int], Job],
    zone: ZoneInfo,
) -> None:
    """Move each changed run's step figures in ``StepDaily`` from what they were to what they
    are. Calls count under their job's step once the job is known, so a run's calls are read
    (one query for the batch) only when its day, template or set of jobs changed."""
    runs = {run.id: run for run in changed}
    jobs_after = _jobs_by_run(jobs)
    after = {pk: jobs_after.get(pk, []) for pk in runs}

    def job_steps(states: list[JobState]) -> dict[str, str]:
        return {s.job_id: s.step_name for s in sorted(states, key=lambda s: s.attempt)}

    moved = [
        pk
        for pk, run in runs.items()
        if before[pk][:2] != (run.requested_at, run.template_recipe_id)
        or job_steps(before[pk][2]) != job_steps(after[pk])
    ]
    calls: dict[int, dict[str, tuple[int, Decimal]]] = {pk: {} for pk in runs}
    if moved:
        with prepared_cursor() as cursor:
            cursor.execute(_CALLS_BY_JOB, {"runs": sorted(moved)})
            for run_pk, job_ref, n, cost in cursor.fetchall():
                calls[run_pk][job_ref] = (n, cost)
    deltas = StepRollupDeltas(zone)
    for pk, run in runs.items():
        requested_at, template, states = before[pk]
        deltas.move(
            requested_at=requested_at,
            template=template,
            steps=run_steps(states, calls[pk]),
            sign=-1,
        )
        deltas.move(
            requested_at=run.requested_at,
            template=run.template_recipe_id,
            steps=run_steps(after[pk], calls[pk]),
            sign=1,
        )
    deltas.apply()


def _jobs_locked(runs: Iterable[Run]) -> dict[tuple[int, str, int], Job]:
    run_ids = [r.id for r in runs]
    return {
        (j.run_id, j.job_id, j.attempt): j
        for j in Job.objects.select_for_update().filter(run_id__in=run_ids).order_by("id")
    }


class _Writes:
    """The run and job rows a batch changed, written together at the end (a few statements
    for the batch instead of one per run and per job; the rows are locked already)."""

    def __init__(self) -> None:
        self.runs: dict[int, Run] = {}
        self.new_jobs: dict[tuple[int, str, int], Job] = {}
        self.jobs: dict[tuple[int, str, int], Job] = {}

    def save(self) -> None:
        _rows_update(Run, self.runs.values(), RUN_COPY_FIELDS)
        _jobs_insert([self.new_jobs[key] for key in sorted(self.new_jobs)])
        _rows_update(Job, self.jobs.values(), JOB_COPY_FIELDS)


# Rows are written with raw ``unnest`` statements of the values as they are: every value comes
# from the state machine's typed states (str, int, aware datetime, None), which is what Django's
# field preparation would pass on (it costs 2 ms per hundred jobs, more than the statement).
def _arrays(model: type[Run] | type[Job], names: Sequence[str]) -> tuple[list[Field], str]:
    """The fields ``names`` of ``model`` and the ``unnest`` arguments of their value arrays."""
    fields = [model._meta.get_field(name) for name in names]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)  # type: ignore[union-attr]
    return fields, arrays  # type: ignore[return-value]


def _rows_update(
    model: type[Run] | type[Job], rows: Iterable[Run | Job], names: Sequence[str]
) -> None:
    """One ``UPDATE ... FROM unnest(...)`` writing the fields ``names`` of ``rows`` (by primary
    key, in key order). Django's ``bulk_update`` builds a CASE per field and row: for a few
    hundred runs that is most of a batch's time."""
    ordered = sorted(rows, key=lambda row: row.pk)
    if not ordered:
        return
    fields, arrays = _arrays(model, names)
    columns = [field.column for field in fields]
    sql = (
        f"UPDATE {model._meta.db_table} AS t SET "  # noqa: S608 - the model's own names
        + ", ".join(f"{c} = v.{c}" for c in columns)
        + f" FROM unnest(%s::bigint[], {arrays}) AS v(id, {', '.join(columns)})"
        " WHERE t.id = v.id"
    )
    params = [[row.pk for row in ordered]]
    params += [[getattr(row, field.attname) for row in ordered] for field in fields]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)


JOB_INSERT_FIELDS = ("run", "job_id", "attempt", *JOB_COPY_FIELDS)


def _jobs_insert(jobs: Sequence[Job]) -> None:
    """One ``INSERT ... SELECT FROM unnest(...)`` of new ``jobs`` in the given order (what
    ``bulk_create`` writes, without its preparation of each value); their ids are set from
    ``RETURNING``, in insert order as ``bulk_create`` takes them."""
    if not jobs:
        return
    fields, arrays = _arrays(Job, JOB_INSERT_FIELDS)
    columns = ", ".join(field.column for field in fields)
    sql = (
        f"INSERT INTO {Job._meta.db_table} ({columns})"  # noqa: S608 - the model's own names
        f" SELECT {columns} FROM unnest({arrays}) WITH ORDINALITY AS v({columns}, n)"
        " ORDER BY n RETURNING id"
    )
    with prepared_cursor() as cursor:
        cursor.execute(sql, [[getattr(job, field.attname) for job in jobs] for field in fields])
        for job, (pk,) in zip(jobs, cursor.fetchall(), strict=True):
            job.pk = pk
            job._state.adding = False
            job._state.db = connection.alias


def _jobs_apply(
    run: Run,
    update: RunUpdate,
    jobs: dict[tuple[int, str, int], Job],
    deltas: RunRollupDeltas,
    writes: _Writes,
) -> bool:
    """Apply the update's jobs; their run time moves in the ledger (``deltas``)."""
    changed = False
    for job_update in update.jobs:
        key = (run.id, job_update.job_id, job_update.attempt)
        existing = jobs.get(key)
        before = _job_state(existing) if existing else None
        after = job_apply(before, job_update)
        if after == before:
            continue
        changed = True
        job = existing or Job(run=run, job_id=after.job_id, attempt=after.attempt)
        if existing is not None:
            deltas.job_time(
                run_pk=run.id,
                started_at=existing.started_at,
                duration_ms=existing.duration_ms,
                sign=-1,
            )
        deltas.job_time(
            run_pk=run.id, started_at=after.started_at, duration_ms=after.duration_ms, sign=1
        )
        for name in JOB_COPY_FIELDS:
            setattr(job, name, getattr(after, name))
        if existing is None:
            writes.new_jobs[key] = job
        elif key not in writes.new_jobs:
            writes.jobs[key] = job
        jobs[key] = job
    return changed
