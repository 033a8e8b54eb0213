"""The run state machine (pure): forward only, durations computed, gaps filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from usage.domain.runs import (
    FieldError,
    JobUpdate,
    RunUpdate,
    job_apply,
    run_apply,
    run_update_parse,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def update(status, minutes, **fields):
    return RunUpdate(
        position=0,
        run_id="r1",
        project="p",
        status=status,
        timestamp=T0 + timedelta(minutes=minutes),
        **fields,
    )


def test_lifecycle_moves_forward_and_computes_duration():
    run = run_apply(None, update("Requested", 0, template_recipe_id="python-lib"))
    run = run_apply(run, update("Running", 1, started_at=T0 + timedelta(minutes=1)))
    run = run_apply(run, update("Succeeded", 9, finished_at=T0 + timedelta(minutes=9)))
    assert run.status == "Succeeded"
    assert run.requested_at == T0
    assert run.duration_ms == 8 * 60 * 1000
    assert run.template_recipe_id == "python-lib"


def test_late_running_after_succeeded_is_ignored_but_fills_gaps():
    run = run_apply(None, update("Succeeded", 9, finished_at=T0 + timedelta(minutes=9)))
    late = run_apply(
        run, update("Running", 1, started_at=T0 + timedelta(minutes=1), trace_id="ab" * 16)
    )
    assert late.status == "Succeeded"
    assert late.started_at == T0 + timedelta(minutes=1)  # unknown before: filled in
    assert late.duration_ms == 8 * 60 * 1000
    assert late.trace_id == "ab" * 16


def test_finished_outcome_is_final():
    run = run_apply(None, update("Failed", 5, failure_type="test_failure"))
    again = run_apply(run, update("Succeeded", 6))
    assert again.status == "Failed"
    assert again.failure_type == "test_failure"


def test_resending_the_same_update_changes_nothing():
    first = run_apply(None, update("Running", 1, started_at=T0))
    assert run_apply(first, update("Running", 1, started_at=T0)) == first


def test_given_duration_wins():
    run = run_apply(
        None,
        update(
            "Succeeded", 5, started_at=T0, finished_at=T0 + timedelta(minutes=5), duration_ms=1234
        ),
    )
    assert run.duration_ms == 1234


def test_job_attempts_follow_the_same_rules():
    job = job_apply(
        None,
        JobUpdate(
            job_id="j",
            attempt=2,
            status="Running",
            timestamp=T0,
            step_name="implement",
            started_at=T0,
        ),
    )
    job = job_apply(
        job,
        JobUpdate(
            job_id="j",
            attempt=2,
            status="Failed",
            timestamp=T0 + timedelta(seconds=30),
            finished_at=T0 + timedelta(seconds=30),
            failure_type="llm_timeout",
        ),
    )
    stale = job_apply(job, JobUpdate(job_id="j", attempt=2, status="Running", timestamp=T0))
    assert stale.status == "Failed"
    assert stale.duration_ms == 30_000
    assert stale.step_name == "implement"


NOW = T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"run_id": "r", "project": "p", "status": "Done"}, "status"),
        ({"project": "p", "status": "Running"}, "run_id"),
        ({"run_id": "r", "status": "Running"}, "project"),
        ({"run_id": "r", "project": "p", "status": "Running", "duration_ms": -1}, "duration_ms"),
        ({"run_id": "r", "project": "p", "status": "Running", "trace_id": "xyz"}, "trace_id"),
        (
            {"run_id": "r", "project": "p", "status": "Running", "started_at": "2026-11-20"},
            "started_at",
        ),
        (
            {"run_id": "r", "project": "p", "status": "Running", "jobs": [{"job_id": "j"}]},
            "jobs[0].status",
        ),
        (
            {
                "run_id": "r",
                "project": "p",
                "status": "Running",
                "jobs": [{"job_id": "j", "status": "Running", "attempt": 0}],
            },
            "jobs[0].attempt",
        ),
        ({"run_id": "r", "project": "p", "status": "Running", "owner": "x"}, "owner"),
    ],
)
def test_invalid_run_updates_name_the_field(item, field):
    error = run_update_parse(item, 3, now=NOW, max_future=timedelta(minutes=5))
    assert isinstance(error, FieldError)
    assert (error.index, error.field) == (3, field)
