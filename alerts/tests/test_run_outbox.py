"""Finished runs wait in an outbox written with the run: a lost or never-enqueued evaluation
(broker down, worker killed) delays the run alert until the sweeper runs, never loses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from alerts import tasks
from alerts.models import Alert, PendingRunEvaluation, RunSubscription
from factory_portal.accounts.models import User
from tests.support import broker_down, run_update

T = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _finish(run_id: str, status: str = "Failed") -> None:
    run_update(run_id, "Running", T, requested_at=T, started_at=T)
    run_update(run_id, status, T + timedelta(minutes=2), finished_at=T + timedelta(minutes=2))


def _subscribe_admin_to_failures() -> None:
    admin = User.objects.get(email="admin@alpha.test")
    RunSubscription.objects.update_or_create(
        user=admin, defaults={"mode": RunSubscription.Mode.FAILURES}
    )


def test_the_outbox_row_is_written_with_the_run_and_only_for_finished_runs(alpha):
    with schema_context(alpha.schema):
        run_update("busy", "Running", T, requested_at=T, started_at=T)
        _finish("done")
        pending = list(PendingRunEvaluation.objects.values_list("run__run_id", flat=True))
    assert pending == ["done"]


def test_an_evaluation_the_broker_never_got_is_done_by_the_sweeper(
    alpha, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(tasks.alerts_runs_finished, "apply_async", broker_down)
    with schema_context(alpha.schema):
        _subscribe_admin_to_failures()
        with django_capture_on_commit_callbacks(execute=True):
            _finish("lost-1")
        assert not Alert.objects.filter(kind=Alert.Kind.RUN).exists()
        run_pk = PendingRunEvaluation.objects.get().run_id
        # Within the grace period the sweeper leaves the run to its own task.
        assert tasks.runs_pending_flush_tenant() == 0
        PendingRunEvaluation.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        assert tasks.runs_pending_flush_tenant() == 1
        (alert,) = Alert.objects.filter(kind=Alert.Kind.RUN)
        assert alert.title == "Run lost-1 failed"
        assert not PendingRunEvaluation.objects.exists()
        # Evaluated once: a second sweep and a late task change nothing.
        assert tasks.runs_pending_flush_tenant() == 0
        tasks.alerts_runs_finished([run_pk])
        assert Alert.objects.filter(kind=Alert.Kind.RUN).count() == 1


def test_the_task_clears_the_runs_it_evaluated(alpha):
    with schema_context(alpha.schema):
        _subscribe_admin_to_failures()
        _finish("quick-1")
        _finish("quick-2", status="Succeeded")
        run_pks = list(PendingRunEvaluation.objects.values_list("run_id", flat=True))
        tasks.alerts_runs_finished(run_pks)
        assert not PendingRunEvaluation.objects.exists()
        assert list(Alert.objects.values_list("title", flat=True)) == ["Run quick-1 failed"]


def test_with_the_broker_down_runs_finish_and_their_alerts_follow_when_it_is_back(
    alpha, django_capture_on_commit_callbacks, caplog
):
    with schema_context(alpha.schema):
        _subscribe_admin_to_failures()
        with broker_down():
            for n in range(3):
                with django_capture_on_commit_callbacks(execute=True):
                    _finish(f"outage-{n}")
        # One failed publish (the first of any task: billing's run guard pass also listens to
        # runs finishing); the next ones were skipped at once (the broker is taken as down).
        assert caplog.text.count("not enqueued") == 1
        assert PendingRunEvaluation.objects.count() == 3
        PendingRunEvaluation.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        assert tasks.runs_pending_flush_tenant() == 3
        assert sorted(Alert.objects.values_list("title", flat=True)) == [
            f"Run outage-{n} failed" for n in range(3)
        ]
