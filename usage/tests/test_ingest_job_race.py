"""A call that names a job stored at the same moment by a lifecycle batch counts under the job's
step once, whichever batch commits first. Each reads the other's rows (the call's job, the job's
calls) only after the other has committed: the events batch locks the call's run before looking
its job up again, the lifecycle batch holds that run until it commits. Without that the call was
counted by neither and the Steps page missed it until a rebuild."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django_tenants.utils import schema_context

from tests.support import in_own_connection, llm_event_in
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import LlmUsageEvent, StepDaily
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

SLUG, RUN_ID, TEMPLATE = "jobrace", "jobrace-run-1", "jobrace-template"
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def _run(*jobs: JobUpdate) -> RunUpdate:
    return RunUpdate(
        0,
        RUN_ID,
        SLUG,
        "Running",
        AT + timedelta(seconds=len(jobs)),
        template_recipe_id=TEMPLATE,
        requested_at=AT,
        started_at=AT,
        jobs=jobs,
    )


JOB = JobUpdate("build-1", 1, "Running", AT, step_name="build", started_at=AT)


def _lifecycle(schema: str) -> None:
    with schema_context(schema):
        runs_ingest(updates=[_run(JOB)])


def _call(schema: str, tenant: object) -> None:
    with schema_context(schema):
        event = llm_event_in("jobrace-call-1", AT, project=SLUG, run_id=RUN_ID, job_id="build-1")
        events_ingest(events=[event], pricer=pricer_for(tenant))


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        project = "(SELECT id FROM usage_project WHERE slug = %s)"
        runs = f"(SELECT id FROM usage_run WHERE project_id IN {project})"  # noqa: S608
        for table in ("usage_runledger", "usage_job"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id IN {runs}", [SLUG])  # noqa: S608
        cursor.execute("DELETE FROM usage_stepdaily WHERE template = %s", [TEMPLATE])
        for table in (
            "usage_llmusageevent",
            "usage_llmusagehourly",
            "usage_llmusagedaily",
            "usage_rundaily",
            "usage_run",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN {project}", [SLUG])  # noqa: S608
        cursor.execute("DELETE FROM usage_project WHERE slug = %s", [SLUG])


def _waits(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _both(first: Callable[[], None], second: Callable[[], None]) -> None:
    """``first`` done in an open transaction; ``second`` started in another connection; once
    it waits for a lock or has finished, ``first`` commits."""
    done, release = threading.Event(), threading.Event()
    pid: list[int] = []
    errors: list[BaseException] = []

    def holder() -> None:
        with transaction.atomic():
            first()
            done.set()
            release.wait(30)

    def racer() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    pid.append(cursor.fetchone()[0])
                second()
        except BaseException as exc:
            errors.append(exc)

    held = threading.Thread(target=lambda: in_own_connection(holder))
    held.start()
    try:
        assert done.wait(30)
        raced = threading.Thread(target=lambda: in_own_connection(racer))
        raced.start()
        deadline = time.monotonic() + 20
        while raced.is_alive() and not (pid and _waits(pid[0])):
            assert time.monotonic() < deadline, "the second batch neither waited nor ended"
            time.sleep(0.02)
    finally:
        release.set()
        held.join(30)
    raced.join(30)
    if errors:
        raise errors[0]


def _steps(schema: str) -> tuple[int, int | None]:
    with schema_context(schema):
        calls = StepDaily.objects.filter(template=TEMPLATE, step_name="build").aggregate(
            n=Sum("calls")
        )["n"]
        stored = LlmUsageEvent.objects.filter(event_id="jobrace-call-1").count()
    return stored, calls


@pytest.fixture
def run_stub(alpha):
    """The run, known before either batch (as a running factory's runs are)."""
    in_own_connection(_cleanup, alpha.schema)

    def stub() -> None:
        with schema_context(alpha.schema):
            runs_ingest(updates=[_run()])

    in_own_connection(stub)
    yield alpha
    in_own_connection(_cleanup, alpha.schema)


def test_a_call_stored_while_its_job_is_being_stored_counts_once(run_stub):
    alpha = run_stub
    _both(lambda: _lifecycle(alpha.schema), lambda: _call(alpha.schema, alpha.tenant))
    assert _steps(alpha.schema) == (1, 1)


def test_a_job_stored_while_its_call_is_being_stored_counts_it_once(run_stub):
    alpha = run_stub
    _both(lambda: _call(alpha.schema, alpha.tenant), lambda: _lifecycle(alpha.schema))
    assert _steps(alpha.schema) == (1, 1)


def test_calls_of_known_jobs_take_no_run_lock(alpha):
    """The lock is for calls that arrive before their job: the everyday batch takes none."""
    with schema_context(alpha.schema):
        runs_ingest(updates=[_run(JOB)])
        seen: list[str] = []

        def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            seen.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(spy):
            _call(alpha.schema, alpha.tenant)
        assert any("usage_job" in sql for sql in seen)  # the job was looked up
        assert not [sql for sql in seen if "FOR KEY SHARE" in sql]
        # Without it, the same call's run is locked.
        seen.clear()
        with connection.execute_wrapper(spy):
            event = llm_event_in(
                "jobrace-call-2", AT, project=SLUG, run_id=RUN_ID, job_id="not-yet-1"
            )
            events_ingest(events=[event], pricer=pricer_for(alpha.tenant))
        assert [sql for sql in seen if "FOR KEY SHARE" in sql]
        assert StepDaily.objects.filter(template=TEMPLATE).aggregate(n=Sum("calls"))["n"] == 1
