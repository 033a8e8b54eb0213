"""Folding the striped rollups (``usage.services.stripes``): a past day's ``RunLedger`` and
``StepDaily`` rows in stripes other than 0 are added to stripe 0 and deleted, so a key keeps one
row; every figure a reader sums stays the same; stripes a writer holds are left for later; and a
fold that would wait for a writer's rows gives way instead of making the writer wait."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_context

from factory_portal.tenants.connection import zone_lock
from tests.support import in_own_connection
from usage.domain import durations
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import Run, RunLedger, StepDaily
from usage.selectors import run_usage
from usage.selectors.steps import step_report
from usage.services import stripes
from usage.services.rollups import StepRollupDeltas, rollup_stripe
from usage.services.runs import runs_ingest
from usage.tasks import rollup_stripes_fold_tenant

pytestmark = pytest.mark.django_db

TEMPLATE = "fold-tpl"
OLD = date(2026, 9, 14)


def _run(run_id: str, at: datetime) -> Run:
    job = JobUpdate(f"{run_id}-build", 1, "Running", at, step_name="build", started_at=at)
    runs_ingest(
        updates=[
            RunUpdate(
                0,
                run_id,
                "folding",
                "Running",
                at,
                template_recipe_id=TEMPLATE,
                requested_at=at,
                started_at=at,
                jobs=(job,),
            )
        ]
    )
    return Run.objects.get(run_id=run_id)


def _histogram(**buckets: int) -> list[int]:
    values = [0] * durations.BUCKETS
    for index, n in buckets.items():
        values[int(index.removeprefix("b"))] = n
    return values


def _striped_rows(run_pk: int, day: date) -> None:
    """A run's day in three stripes and two step keys in several, as concurrent writers leave
    them (stripe 0 of the second key absent)."""
    for stripe, calls, cost, job_ms in ((3, 4, "0.40", 0), (5, 1, "0.05", 900), (0, 2, "0.20", 0)):
        RunLedger.objects.update_or_create(
            run_id=run_pk,
            day=day,
            stripe=stripe,
            defaults={"calls": calls, "cost": Decimal(cost), "job_ms": job_ms, "input_tokens": 10},
        )
    StepDaily.objects.filter(template=TEMPLATE).delete()
    for stripe, runs, failed, histogram, failures, calls, cost in (
        (0, 2, 1, _histogram(b3=2), {"timeout": 1}, 0, "0"),
        (2, 0, 1, _histogram(b3=1, b7=1), {"timeout": 1, "oom": 1}, 5, "0.45"),
        (9, 1, 0, _histogram(b1=1), {}, 1, "0.05"),
    ):
        StepDaily.objects.create(
            day=day,
            template=TEMPLATE,
            step_name="build",
            stripe=stripe,
            runs=runs,
            settled=runs,
            attempts=runs + failed,
            finished_attempts=runs + failed,
            failed_attempts=failed,
            duration_histogram=histogram,
            failure_types=failures,
            calls=calls,
            cost=Decimal(cost),
        )
    StepDaily.objects.create(
        day=day, template=TEMPLATE, step_name="review", stripe=4, runs=1, settled=1, attempts=1
    )
    # As the events statement makes a row (calls only): an empty histogram, no failure types.
    StepDaily.objects.create(
        day=day, template=TEMPLATE, step_name="deploy", stripe=11, runs=2, duration_histogram=[]
    )


def _figures(run: Run, day: date) -> tuple[object, ...]:
    """What readers make of the rows: the run's usage of the day, the day's step report."""
    usage = [u for u in run_usage(start=day, end=day + timedelta(days=1)) if u.run_id == run.run_id]
    report = step_report(start=day, end=day, template=TEMPLATE)
    return usage, {row.step: row.current for row in report.rows}


def test_a_past_days_stripes_fold_into_stripe_0_and_every_figure_stays(alpha):
    recent = OLD + timedelta(days=30)
    with schema_context(alpha.schema):
        stripes.stripes_fold(since=OLD, before=recent)  # rows other tests committed there
        old_run = _run("fold-run-old", datetime(2026, 9, 14, 9, tzinfo=UTC))
        _striped_rows(old_run.pk, OLD)
        RunLedger.objects.create(run=old_run, day=recent, stripe=7, calls=1, cost=Decimal("0.10"))
        before = _figures(old_run, OLD)

        result = stripes.stripes_fold(since=OLD, before=recent)

        assert (result.ledger_rows, result.step_rows, result.complete) == (2, 4, True)
        ledger = RunLedger.objects.filter(run=old_run, day=OLD)
        assert [(r.stripe, r.calls, r.cost, r.job_ms, r.input_tokens) for r in ledger] == [
            (0, 7, Decimal("0.65"), 900, 30)
        ]
        # The day from ``before`` on is not touched.
        assert RunLedger.objects.get(run=old_run, day=recent).stripe == 7
        build = StepDaily.objects.get(template=TEMPLATE, step_name="build")
        assert (build.stripe, build.runs, build.attempts, build.failed_attempts) == (0, 3, 5, 2)
        assert build.duration_histogram == _histogram(b1=1, b3=3, b7=1)
        assert build.failure_types == {"timeout": 2, "oom": 1}
        assert (build.calls, build.cost) == (6, Decimal("0.5000000000"))
        review = StepDaily.objects.get(template=TEMPLATE, step_name="review")
        assert (review.stripe, review.runs) == (0, 1)
        deploy = StepDaily.objects.get(template=TEMPLATE, step_name="deploy")  # its '{}' histogram
        assert (deploy.stripe, deploy.runs, deploy.duration_histogram) == (0, 2, _histogram())
        assert _figures(old_run, OLD) == before

        # Nothing left to fold: a second fold changes nothing.
        again = stripes.stripes_fold(since=OLD, before=recent)
        assert (again.ledger_rows, again.step_rows) == (0, 0)


@pytest.mark.parametrize(("held_stripe", "left"), [(3, {0, 3}), (0, {0, 3, 5})])
def test_stripes_held_by_writers_are_left_for_a_later_fold(alpha, held_stripe, left, monkeypatch):
    monkeypatch.setattr(stripes, "STRIPE_0_TRIES", 2)
    run_pk = 987_654_321  # rows only (no run): nothing here takes a stripe in this transaction
    with schema_context(alpha.schema):
        _striped_rows(run_pk, OLD)

    def writer() -> None:
        assert stripes._take(held_stripe)  # as a writer holds its stripe

    result, stored = _fold_beside(alpha.schema, run_pk, writer)
    assert result.complete is False
    # Stripe 3 held: its row stays, stripe 5's is folded. Stripe 0 held: nothing is folded.
    assert stored == left


def _fold_beside(
    schema: str, run_pk: int, hold: Callable[[], None]
) -> tuple[stripes.FoldResult, set[int]]:
    """Fold the day ``OLD`` while another connection's open transaction has run ``hold``;
    answers the fold's result and the stripes left of ``run_pk``'s ledger rows that day."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with schema_context(schema), transaction.atomic():
            hold()
            held.set()
            release.wait(30)

    thread = threading.Thread(target=lambda: in_own_connection(holder))
    thread.start()
    try:
        assert held.wait(30)
        with schema_context(schema):
            result = stripes.stripes_fold(since=OLD, before=OLD + timedelta(days=1))
            stored = set(
                RunLedger.objects.filter(run_id=run_pk, day=OLD).values_list("stripe", flat=True)
            )
    finally:
        release.set()
        thread.join(30)
    return result, stored


def _commit_striped(schema: str) -> None:
    with schema_context(schema):
        run = _run("fold-run-wait", datetime(2026, 9, 14, 9, tzinfo=UTC))
        RunLedger.objects.create(run=run, day=OLD, stripe=6, calls=2, cost=Decimal("0.30"))


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        run = "(SELECT id FROM usage_run WHERE run_id = 'fold-run-wait')"
        for table in ("usage_runledger", "usage_job"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id IN {run}")  # noqa: S608
        project = "(SELECT id FROM usage_project WHERE slug = 'folding')"
        cursor.execute(f"DELETE FROM usage_rundaily WHERE project_id IN {project}")  # noqa: S608
        cursor.execute("DELETE FROM usage_stepdaily WHERE template = %s", [TEMPLATE])
        cursor.execute("DELETE FROM usage_run WHERE run_id = 'fold-run-wait'")
        cursor.execute("DELETE FROM usage_project WHERE slug = 'folding'")


def test_a_fold_gives_way_to_a_writer_holding_its_rows(alpha):
    """A writer that found every stripe taken shares one without its lock (``rollup_stripe``);
    should the fold need that writer's rows, the fold stops after its short lock timeout and the
    writer goes on (it could be PostgreSQL's deadlock victim otherwise)."""
    in_own_connection(_commit_striped, alpha.schema)
    held, release = threading.Event(), threading.Event()
    writer_done: list[bool] = []

    def writer() -> None:
        with schema_context(alpha.schema), transaction.atomic():
            row = RunLedger.objects.select_for_update().get(run__run_id="fold-run-wait", stripe=6)
            held.set()
            release.wait(30)
            RunLedger.objects.filter(pk=row.pk).update(calls=row.calls + 1)
        writer_done.append(True)

    thread = threading.Thread(target=lambda: in_own_connection(writer))
    thread.start()
    try:
        assert held.wait(30)
        folded: list[stripes.FoldResult] = []
        in_own_connection(
            lambda: folded.append(_fold_in(alpha.schema, before=OLD + timedelta(days=1)))
        )
        release.set()
        thread.join(30)
        assert writer_done == [True]
        assert folded[0].complete is False
        with schema_context(alpha.schema):
            waited = RunLedger.objects.get(run__run_id="fold-run-wait", day=OLD, stripe=6)
            assert waited.calls == 3  # the writer's update, made after the fold gave way

        # Once the writer is done, the next fold takes its rows, figures intact.
        in_own_connection(
            lambda: folded.append(_fold_in(alpha.schema, before=OLD + timedelta(days=1)))
        )
        assert folded[1].complete is True and folded[1].ledger_rows >= 1
        with schema_context(alpha.schema):
            rows = RunLedger.objects.filter(run__run_id="fold-run-wait", day=OLD)
            assert [(r.stripe, r.calls, r.cost) for r in rows] == [(0, 3, Decimal("0.3000000000"))]
    finally:
        release.set()
        thread.join(30)
        in_own_connection(_cleanup, alpha.schema)


def _fold_in(schema: str, *, before: date) -> stripes.FoldResult:
    with schema_context(schema):
        return stripes.stripes_fold(since=OLD, before=before)


def test_the_beat_folds_each_active_tenants_days_before_yesterday(alpha):
    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if "rollup_stripes_fold" in e["task"]
    ]
    assert entry["task"] == "usage.tasks.rollup_stripes_fold_all"
    with schema_context(alpha.schema):
        now = datetime.now(UTC)
        rollup_stripes_fold_tenant()  # rows other tests committed: the count is ours
        run = _run("fold-run-beat", now - timedelta(days=5))
        today = now.date()
        for day in (today - timedelta(days=3), today):
            for stripe in (0, 8):
                RunLedger.objects.create(run=run, day=day, stripe=stripe, calls=1)
        result = rollup_stripes_fold_tenant()
        assert result["schema"] == alpha.schema and result["ledger_rows"] == 1
        stripes_by_day = {
            day: sorted(RunLedger.objects.filter(run=run, day=day).values_list("stripe", flat=True))
            for day in (today - timedelta(days=3), today)
        }
    assert stripes_by_day == {today - timedelta(days=3): [0], today: [0, 8]}


def test_writers_keep_stripes_of_their_own_while_a_fold_runs(alpha, monkeypatch):
    """The fold holds the stripe it empties and stripe 0, nothing more: a writer arriving
    meanwhile still takes a free stripe with its lock (holding every free one would leave it to
    share a stripe without one, back to waiting for other writers' rows)."""
    in_own_connection(_commit_striped, alpha.schema)
    inside, release = threading.Event(), threading.Event()

    class Pausing(StepRollupDeltas):
        def apply(self) -> None:  # the fold's last step: everything it holds is held now
            super().apply()
            inside.set()
            release.wait(30)

    monkeypatch.setattr(stripes, "StepRollupDeltas", Pausing)
    folded: list[stripes.FoldResult] = []
    fold = threading.Thread(
        target=lambda: in_own_connection(
            lambda: folded.append(_fold_in(alpha.schema, before=OLD + timedelta(days=1)))
        )
    )
    fold.start()
    writer: list[tuple[int, int]] = []
    try:
        assert inside.wait(30)

        def write() -> None:
            with schema_context(alpha.schema), transaction.atomic():
                stripe = rollup_stripe()
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND objsubid = 2 AND objid = %s AND pid = pg_backend_pid()",
                        [stripe],
                    )
                    writer.append((stripe, cursor.fetchone()[0]))

        in_own_connection(write)
    finally:
        release.set()
        fold.join(30)
        in_own_connection(_cleanup, alpha.schema)
    stripe, held = writer[0]
    assert stripe not in (0, 6) and held == 1  # its own stripe, under its own lock
    assert folded[0].complete is True


def test_a_fold_waits_for_no_change_of_time_zone(alpha):
    """A change of time zone rebuilds these tables holding the zone lock alone; the fold holds
    it shared, as writers do, so the two never overlap: here the fold gives way."""
    run_pk = 987_654_322
    with schema_context(alpha.schema):
        _striped_rows(run_pk, OLD)

    def zone_change() -> None:
        zone_lock(alpha.schema, exclusive=True)

    result, stored = _fold_beside(alpha.schema, run_pk, zone_change)
    assert result.complete is False
    assert stored == {0, 3, 5}
