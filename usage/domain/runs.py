"""Run and job lifecycle: parsing updates and the state machine (pure, no database).

Statuses only move forward: Requested -> Running -> Succeeded | Failed | Cancelled. An update that
would move backwards (a late "Running" after "Succeeded") or change a finished outcome is ignored
for its status, though it may still fill fields that are unknown so far (a start time, a trace id).
Durations are computed from start and finish when not given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from usage.domain.events import (
    SLUG_RE,
    FieldError,
    Invalid,
    id_field,
    parse_timestamp,
    text_field,
)
from usage.domain.limits import (
    FAILURE_TYPE_LENGTH,
    MAX_ATTEMPT,
    MAX_DURATION_MS,
    MAX_JOBS_PER_RUN,
    RUN_TYPE_LENGTH,
    STEP_NAME_LENGTH,
    TEMPLATE_LENGTH,
    TENANT_LENGTH,
    TRACE_ID_LENGTH,
)

STATUS_RANK = {"Requested": 0, "Running": 1, "Succeeded": 2, "Failed": 2, "Cancelled": 2}
TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


@dataclass(frozen=True)
class JobState:
    job_id: str
    attempt: int
    step_name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    failure_type: str
    updated_at: datetime


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str
    template_recipe_id: str
    run_type: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    failure_type: str
    trace_id: str
    updated_at: datetime


@dataclass(frozen=True)
class RunUpdate:
    """One lifecycle update as sent; ``None`` means "not said"."""

    position: int  # its index in the batch, like the events'
    run_id: str
    project: str
    status: str
    timestamp: datetime
    tenant: str = ""
    template_recipe_id: str | None = None
    run_type: str | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    failure_type: str | None = None
    trace_id: str | None = None
    jobs: tuple[JobUpdate, ...] = ()


@dataclass(frozen=True)
class JobUpdate:
    job_id: str
    attempt: int
    status: str
    timestamp: datetime
    step_name: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    failure_type: str | None = None


# The fields a client may send are the updates' own (``position`` is the batch's, not sent).
RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunUpdate)) - {"position"}
JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(JobUpdate))


def _duration(started: datetime | None, finished: datetime | None, given: int | None) -> int | None:
    if given is not None:
        return given
    if started is not None and finished is not None and finished >= started:
        return int((finished - started) / timedelta(milliseconds=1))
    return None


def _merge(current: Any, update: Any, fields: tuple[str, ...], overwrite: bool) -> dict[str, Any]:
    """Field values after ``update``: given values win when ``overwrite``, else only fill gaps."""
    merged = {}
    for name in fields:
        old, new = getattr(current, name), getattr(update, name)
        empty = old is None or old == ""
        merged[name] = new if new is not None and (overwrite or empty) else old
    return merged


def _moves_forward(
    current_status: str, new_status: str, current_at: datetime, new_at: datetime
) -> bool:
    current_rank, new_rank = STATUS_RANK[current_status], STATUS_RANK[new_status]
    if new_rank != current_rank:
        return new_rank > current_rank
    if current_status in TERMINAL:
        return new_status == current_status and new_at >= current_at
    return new_at >= current_at


RUN_DETAIL_FIELDS = (
    "template_recipe_id",
    "run_type",
    "started_at",
    "finished_at",
    "duration_ms",
    "failure_type",
    "trace_id",
)


def run_apply(current: RunState | None, update: RunUpdate) -> RunState:
    """The run after ``update``."""
    if current is None:
        requested = update.requested_at or update.started_at or update.timestamp
        state = RunState(
            run_id=update.run_id,
            status=update.status,
            template_recipe_id=update.template_recipe_id or "",
            run_type=update.run_type or "",
            requested_at=requested,
            started_at=update.started_at,
            finished_at=update.finished_at,
            duration_ms=update.duration_ms,
            failure_type=update.failure_type or "",
            trace_id=update.trace_id or "",
            updated_at=update.timestamp,
        )
    else:
        forward = _moves_forward(
            current.status, update.status, current.updated_at, update.timestamp
        )
        merged = _merge(current, update, RUN_DETAIL_FIELDS, overwrite=forward)
        state = dataclasses.replace(
            current,
            **merged,
            status=update.status if forward else current.status,
            requested_at=min(current.requested_at, update.requested_at or current.requested_at),
            updated_at=max(current.updated_at, update.timestamp),
        )
    return dataclasses.replace(
        state, duration_ms=_duration(state.started_at, state.finished_at, state.duration_ms)
    )


JOB_DETAIL_FIELDS = ("step_name", "started_at", "finished_at", "duration_ms", "failure_type")


def job_apply(current: JobState | None, update: JobUpdate) -> JobState:
    """The job attempt after ``update``."""
    if current is None:
        state = JobState(
            job_id=update.job_id,
            attempt=update.attempt,
            step_name=update.step_name or "",
            status=update.status,
            started_at=update.started_at,
            finished_at=update.finished_at,
            duration_ms=update.duration_ms,
            failure_type=update.failure_type or "",
            updated_at=update.timestamp,
        )
    else:
        forward = _moves_forward(
            current.status, update.status, current.updated_at, update.timestamp
        )
        state = dataclasses.replace(
            current,
            **_merge(current, update, JOB_DETAIL_FIELDS, overwrite=forward),
            status=update.status if forward else current.status,
            updated_at=max(current.updated_at, update.timestamp),
        )
    return dataclasses.replace(
        state, duration_ms=_duration(state.started_at, state.finished_at, state.duration_ms)
    )


# --- parsing -----------------------------------------------------------------------------------


def _status(item: dict[str, Any], field: str = "status") -> str:
    value = item.get(field)
    if not isinstance(value, str) or value not in STATUS_RANK:
        raise Invalid(field, f"must be one of {', '.join(STATUS_RANK)}")
    return value


def _ms(item: dict[str, Any], field: str) -> int | None:
    value: object = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DURATION_MS:
        raise Invalid(field, f"must be a whole number of milliseconds, 0 to {MAX_DURATION_MS}")
    return value


def _time(
    item: dict[str, Any], field: str, now: datetime, max_future: timedelta
) -> datetime | None:
    return None if item.get(field) is None else parse_timestamp(item[field], field, now, max_future)


def _job(
    item: Any, position: int, now: datetime, max_future: timedelta, run_timestamp: datetime
) -> JobUpdate:
    prefix = f"jobs[{position}]."
    try:
        if not isinstance(item, dict):
            raise Invalid("", "must be a JSON object")
        unknown = sorted(set(item) - JOB_FIELDS)
        if unknown:
            raise Invalid(unknown[0], "is not a field of jobs")
        attempt = item.get("attempt", 1)
        if (
            isinstance(attempt, bool)
            or not isinstance(attempt, int)
            or not 1 <= attempt <= MAX_ATTEMPT
        ):
            raise Invalid("attempt", f"must be a whole number from 1 to {MAX_ATTEMPT}")
        started = _time(item, "started_at", now, max_future)
        finished = _time(item, "finished_at", now, max_future)
        return JobUpdate(
            job_id=id_field(item, "job_id", required=True),
            attempt=attempt,
            status=_status(item),
            timestamp=_time(item, "timestamp", now, max_future)
            or finished
            or started
            or run_timestamp,
            step_name=text_field(item, "step_name", required=False, max_length=STEP_NAME_LENGTH)
            or None,
            started_at=started,
            finished_at=finished,
            duration_ms=_ms(item, "duration_ms"),
            failure_type=text_field(
                item, "failure_type", required=False, max_length=FAILURE_TYPE_LENGTH
            )
            or None,
        )
    except Invalid as problem:
        raise Invalid(
            prefix + problem.field if problem.field else prefix.rstrip("."), problem.message
        ) from None


def run_update_parse(
    item: Any, index: int, *, now: datetime, max_future: timedelta, platform: bool = False
) -> RunUpdate | FieldError:
    try:
        if not isinstance(item, dict):
            raise Invalid("", "each run update must be a JSON object")
        unknown = sorted(set(item) - RUN_FIELDS)
        if unknown:
            raise Invalid(unknown[0], "is not a field of run updates")
        tenant = text_field(item, "tenant", required=platform, max_length=TENANT_LENGTH)
        if tenant and not platform:
            raise Invalid("tenant", "is only accepted with a platform ingest key")
        project = item.get("project")
        if not isinstance(project, str) or not SLUG_RE.fullmatch(project):
            raise Invalid("project", "is required: a slug of lowercase letters, digits, '-', '_'")
        started = _time(item, "started_at", now, max_future)
        finished = _time(item, "finished_at", now, max_future)
        requested = _time(item, "requested_at", now, max_future)
        timestamp = (
            _time(item, "timestamp", now, max_future) or finished or started or requested or now
        )
        trace_id = text_field(item, "trace_id", required=False, max_length=TRACE_ID_LENGTH)
        if trace_id and not (
            len(trace_id) == 32 and all(c in "0123456789abcdef" for c in trace_id)
        ):
            raise Invalid("trace_id", "must be 32 lowercase hex characters (a W3C trace id)")
        jobs = item.get("jobs", [])
        if not isinstance(jobs, list) or len(jobs) > MAX_JOBS_PER_RUN:
            raise Invalid("jobs", f"must be a list of at most {MAX_JOBS_PER_RUN} jobs")
        return RunUpdate(
            position=index,
            run_id=id_field(item, "run_id", required=True, run=True),
            project=project,
            status=_status(item),
            timestamp=timestamp,
            tenant=tenant,
            template_recipe_id=text_field(
                item, "template_recipe_id", required=False, max_length=TEMPLATE_LENGTH
            )
            or None,
            run_type=text_field(item, "run_type", required=False, max_length=RUN_TYPE_LENGTH)
            or None,
            requested_at=requested,
            started_at=started,
            finished_at=finished,
            duration_ms=_ms(item, "duration_ms"),
            failure_type=text_field(
                item, "failure_type", required=False, max_length=FAILURE_TYPE_LENGTH
            )
            or None,
            trace_id=trace_id or None,
            jobs=tuple(_job(j, n, now, max_future, timestamp) for n, j in enumerate(jobs)),
        )
    except Invalid as problem:
        return FieldError(index, problem.field, problem.message)
