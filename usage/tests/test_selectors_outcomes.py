"""Run outcomes over time (counts by status and failure type, exact duration percentiles per
bucket) and the tenant's queue of runs and jobs, for the health pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django_tenants.utils import schema_context

from tests.support import run_finished, run_update
from usage.domain.runs import JobUpdate
from usage.selectors.outcomes import run_outcomes, run_queue

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def test_outcomes_per_bucket_with_exact_percentiles(alpha) -> None:
    minutes = [5, 7, 11, 13, 17, 19, 23, 29, 61, 67]  # the last two finish after 01:00
    with schema_context(alpha.schema):
        for i, m in enumerate(minutes):
            run_finished(f"ok-{i}", "Succeeded", START + timedelta(minutes=i), m)
        run_finished("bad-1", "Failed", START, 3, failure_type="deploy_error")
        run_finished("bad-2", "Failed", START, 4)
        run_finished("late", "Succeeded", START + timedelta(hours=5), 1)  # outside the range
        run_update("active", "Running", START, requested_at=START, started_at=START)
        result = run_outcomes(start=START, end=START + timedelta(hours=2), step=timedelta(hours=1))
    first, second = result.buckets
    assert first.by_status == {"Succeeded": 8, "Failed": 2}  # finished before 01:00
    assert second.by_status == {"Succeeded": 2}
    assert first.failures_by_type == {"deploy_error": 1, "unspecified": 1}
    durations = [m * 60000 for m in minutes[:8]] + [3 * 60000, 4 * 60000]
    assert first.duration_ms[0.5] == pytest.approx(np.quantile(durations, 0.5))
    assert first.duration_ms[0.95] == pytest.approx(np.quantile(durations, 0.95))
    assert result.finished == 12
    assert result.failure_types() == ["deploy_error", "unspecified"]
    with pytest.raises(ValueError, match="positive step"):
        run_outcomes(start=START, end=START, step=timedelta(hours=1))


def test_run_queue(alpha) -> None:
    with schema_context(alpha.schema):
        assert run_queue().empty
        run_update("w1", "Requested", START, requested_at=START)
        run_update(
            "w2",
            "Requested",
            START + timedelta(minutes=5),
            requested_at=START + timedelta(minutes=5),
        )
        run_update(
            "r1",
            "Running",
            START,
            requested_at=START,
            started_at=START,
            jobs=(
                JobUpdate("j1", 1, "Running", START, step_name="build", started_at=START),
                JobUpdate("j2", 1, "Requested", START, step_name="deploy"),
            ),
        )
        queue = run_queue()
    assert (queue.runs_waiting, queue.runs_running) == (2, 1)
    assert queue.oldest_waiting_since == START
    assert (queue.jobs_waiting, queue.jobs_running) == (1, 1)
    assert {s.step_name for s in queue.by_step} == {"build", "deploy"}
