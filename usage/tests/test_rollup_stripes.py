"""The step rollup and the run ledger are striped: a transaction writes ``StepDaily`` and
``RunLedger`` rows of the stripe it holds (``rollup_stripe``), so concurrent ingest batches adding
to the same day, template and step, or to the same run's day, do not queue behind each other's
row locks (under mixed load most ingest backends waited there, behind a lifecycle batch that held
the rows), and readers sum a key's rows."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context

from tests.support import in_own_connection, llm_event_in
from usage.domain import durations
from usage.domain.runs import JobUpdate, RunUpdate
from usage.domain.steps import StepFigures
from usage.models import Run, RunLedger, StepDaily
from usage.pricing import pricer_for
from usage.selectors import run_filter_choices
from usage.selectors.cost_drivers import retry_cost_by_template
from usage.selectors.steps import step_report
from usage.services.ingest import events_ingest
from usage.services.rollups import RunRollupDeltas, StepRollupDeltas, rollup_stripe
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

TEMPLATE = "stripe-tpl"
RUN_ID = "stripe-run-1"


def _run_with_job(schema: str, at: datetime) -> None:
    with schema_context(schema):
        job = JobUpdate("stripe-run-1-build", 1, "Running", at, step_name="build", started_at=at)
        runs_ingest(
            updates=[
                RunUpdate(
                    0,
                    RUN_ID,
                    "stripes",
                    "Running",
                    at,
                    template_recipe_id=TEMPLATE,
                    requested_at=at,
                    started_at=at,
                    jobs=(job,),
                )
            ]
        )


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        project = "(SELECT id FROM usage_project WHERE slug = 'stripes')"
        run = f"(SELECT id FROM usage_run WHERE project_id IN {project})"  # noqa: S608
        for table in ("usage_llmusageevent", "usage_runledger", "usage_job"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id IN {run}")  # noqa: S608
        for table in ("usage_llmusagehourly", "usage_llmusagedaily", "usage_rundaily"):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN {project}")  # noqa: S608
        cursor.execute("DELETE FROM usage_stepdaily WHERE template = %s", [TEMPLATE])
        cursor.execute(f"DELETE FROM usage_run WHERE project_id IN {project}")  # noqa: S608
        cursor.execute("DELETE FROM usage_project WHERE slug = 'stripes'")


def test_an_events_batch_does_not_wait_for_a_batch_holding_the_same_step_and_ledger_rows(alpha):
    at = datetime.now(UTC) - timedelta(minutes=10)
    in_own_connection(_run_with_job, alpha.schema, at)
    held, release = threading.Event(), threading.Event()
    holder_stripe: list[int] = []

    def lifecycle_batch() -> None:
        """Adds to the step's row and keeps its transaction open, as runs_ingest does while it
        moves the rest of a batch's runs."""
        with schema_context(alpha.schema), transaction.atomic():
            run = Run.objects.get(run_id=RUN_ID)
            ledger = RunRollupDeltas(ZoneInfo("UTC"))  # a new row: the run's first on the day
            ledger.job_time(run_pk=run.pk, started_at=at, duration_ms=1500, sign=1)
            ledger.apply_ledger()
            deltas = StepRollupDeltas(ZoneInfo("UTC"))
            figures = StepFigures(runs=1, attempts=1, histogram=[0] * durations.BUCKETS)
            deltas.move(requested_at=at, template=TEMPLATE, steps={"build": figures}, sign=1)
            deltas.apply()
            holder_stripe.append(rollup_stripe())
            held.set()
            release.wait(30)

    holder = threading.Thread(target=lambda: in_own_connection(lifecycle_batch))
    holder.start()
    try:
        assert held.wait(30)

        def ingest() -> None:
            with schema_context(alpha.schema), transaction.atomic():
                with connection.cursor() as cursor:  # waiting on a lock fails this test
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                result = events_ingest(
                    events=[
                        llm_event_in(
                            f"stripe-{n}",
                            at,
                            project="stripes",
                            run_id=RUN_ID,
                            job_id="stripe-run-1-build",
                            cost=Decimal("0.25"),
                        )
                        for n in range(4)
                    ],
                    pricer=pricer_for(alpha.tenant),
                )
                assert result.accepted == 4

        in_own_connection(ingest)
        assert not release.is_set()  # stored while the other batch still held its rows
    finally:
        release.set()
        holder.join(60)
    try:
        with schema_context(alpha.schema):
            rows = list(
                StepDaily.objects.filter(template=TEMPLATE, step_name="build").order_by("stripe")
            )
            assert holder_stripe == [0]
            assert [(r.stripe, r.runs, r.calls) for r in rows] == [(0, 2, 0), (1, 0, 4)]
            ledger_rows = RunLedger.objects.filter(run__run_id=RUN_ID).order_by("stripe")
            assert [(r.stripe, r.job_ms, r.calls) for r in ledger_rows] == [(0, 1500, 0), (1, 0, 4)]
            day = at.date()
            report = step_report(start=day, end=day, template=TEMPLATE)
            (row,) = report.rows
            assert (row.current.runs, row.current.calls) == (2, 4)
            assert row.current.ai_cost == Decimal("1.00")
    finally:
        in_own_connection(_cleanup, alpha.schema)


def test_rollup_stripe_needs_a_transaction(alpha):
    def outside() -> None:  # a connection of its own, in autocommit: the lock would not hold
        with schema_context(alpha.schema):
            rollup_stripe()

    with pytest.raises(RuntimeError, match="in a transaction"):
        in_own_connection(outside)


def test_a_stripe_is_held_by_one_transaction_at_a_time(alpha):
    seen: list[int] = []
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with schema_context(alpha.schema), transaction.atomic():
            seen.append(rollup_stripe())
            seen.append(rollup_stripe())  # the same one again within the transaction
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=lambda: in_own_connection(hold))
    holder.start()
    try:
        assert inside.wait(30)

        def other() -> None:
            with schema_context(alpha.schema), transaction.atomic():
                seen.append(rollup_stripe())

        in_own_connection(other)
    finally:
        release.set()
        holder.join(60)
    in_own_connection(other)  # the first is free again once its holder committed
    assert seen == [0, 0, 1, 0]


def _step_row(stripe: int, **figures: object) -> StepDaily:
    return StepDaily(
        day=date(2026, 3, 2),
        template=TEMPLATE,
        step_name="test",
        stripe=stripe,
        duration_histogram=[0] * durations.BUCKETS,
        **figures,
    )


def test_readers_sum_a_keys_stripes(alpha):
    with schema_context(alpha.schema):
        StepDaily.objects.bulk_create(
            [
                # the lifecycle's stripe: two (run, step) pairs, one of them retried
                _step_row(0, runs=2, attempts=3, retries=1, finished_attempts=3),
                # an events batch's stripe: only the calls of those jobs
                _step_row(1, calls=6, cost=Decimal("3.0000000000")),
                # a pair moved out in a third stripe, and its figures with it
                _step_row(2, runs=-1, attempts=-1, finished_attempts=-1),
            ]
        )
        day = date(2026, 3, 2)
        (row,) = step_report(start=day, end=day, template=TEMPLATE).rows
        assert (row.current.runs, row.current.attempts, row.current.retries) == (1, 2, 1)
        assert (row.current.calls, row.current.ai_cost) == (6, Decimal("3.0000000000"))
        # cost x retries / attempts of the key's sums (3.00 x 1 / 2), not of each row
        retry_cost = retry_cost_by_template(start=day, end=day + timedelta(days=1))
        assert retry_cost == {TEMPLATE: Decimal("1.5")}


def test_a_key_whose_stripes_add_up_to_no_runs_is_not_shown(alpha):
    with schema_context(alpha.schema):
        StepDaily.objects.bulk_create(
            [_step_row(0, runs=1, attempts=1), _step_row(1, runs=-1, attempts=-1)]
        )
        day = date(2026, 3, 2)
        assert step_report(start=day, end=day, template=TEMPLATE).rows == []


def test_a_failure_type_whose_stripes_cancel_out_is_not_offered_as_a_filter(alpha):
    with schema_context(alpha.schema):
        StepDaily.objects.bulk_create(
            [
                _step_row(0, runs=1, failure_types={"timeout": 1, "oom": 2}),
                _step_row(1, failure_types={"timeout": -1}),  # the failed attempt moved out
            ]
        )
        types = run_filter_choices().failure_types
        assert "oom" in types
        assert "timeout" not in types


def test_with_every_stripe_taken_a_stripe_is_shared_without_waiting(alpha, monkeypatch):
    from usage.services import rollups

    monkeypatch.setattr(rollups, "ROLLUP_STRIPES", 1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with schema_context(alpha.schema), transaction.atomic():
            rollup_stripe()
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=lambda: in_own_connection(hold))
    holder.start()
    try:
        assert inside.wait(30)

        def other() -> None:
            with schema_context(alpha.schema), transaction.atomic():
                with connection.cursor() as cursor:  # waiting for the stripe fails this test
                    cursor.execute("SET LOCAL lock_timeout = '1s'")
                assert rollup_stripe() == 0

        in_own_connection(other)
        assert not release.is_set()
    finally:
        release.set()
        holder.join(60)
