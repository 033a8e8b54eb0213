"""Celery tasks of alerts. Tasks run in the schema of the tenant that enqueued them
(tenant-schemas-celery); the beat tasks fan out one task per tenant."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from alerts.models import Delivery, PendingRunEvaluation
from alerts.services import evaluate
from alerts.services.deliver import delivery_send
from alerts.services.outbox import outbox_flush
from factory_portal.celery import app
from factory_portal.tenants.fanout import tenants_fan_out

logger = logging.getLogger(__name__)
FLUSH_BATCH = 200
PENDING_GRACE_S = 30


@app.task
def alerts_evaluate_all() -> int:
    """Beat: forecast-based and time-window rules of every tenant."""
    return tenants_fan_out(alerts_evaluate_tenant)


@app.task
def alerts_evaluate_tenant() -> int:
    now = timezone.now()
    raised = evaluate.budgets_evaluate(now=now)
    raised += evaluate.commitments_evaluate(now=now)
    raised += [a for a in (evaluate.anomaly_evaluate(now=now),) if a]
    raised += [a for a in (evaluate.failure_rate_evaluate(now=now),) if a]
    return len(raised)


@app.task
def alerts_after_usage() -> int:
    """After an ingest: budgets and commitments on actual spend and the cost anomaly rule."""
    now = timezone.now()
    raised = evaluate.budgets_evaluate(now=now)
    raised += evaluate.commitments_evaluate(now=now)
    anomaly = evaluate.anomaly_evaluate(now=now)
    return len(raised) + (anomaly is not None)


@app.task
def alerts_runs_finished(run_ids: list[int]) -> int:
    raised = evaluate.runs_evaluate(run_ids=run_ids)
    PendingRunEvaluation.objects.filter(run_id__in=run_ids).delete()
    failure = evaluate.failure_rate_evaluate(now=timezone.now())
    return len(raised) + (failure is not None)


@app.task
def runs_pending_flush_all() -> int:
    """Beat: the finished-runs outbox of every tenant."""
    return tenants_fan_out(runs_pending_flush_tenant)


@app.task
def runs_pending_flush_tenant() -> int:
    """Evaluate finished runs whose task never ran (broker down, worker lost), oldest first.
    Runs younger than the grace period are left to the task enqueued for them."""
    cutoff = timezone.now() - timedelta(seconds=PENDING_GRACE_S)
    run_ids = list(
        PendingRunEvaluation.objects.filter(created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("run_id", flat=True)[:FLUSH_BATCH]
    )
    if not run_ids:
        return 0
    return alerts_runs_finished(run_ids)


@app.task
def delivery_send_task(delivery_id: int) -> str:
    outcome = delivery_send(delivery_id)
    if outcome.status == "pending" and outcome.retry_in_s is not None:
        try:
            delivery_send_task.apply_async(
                args=[delivery_id], countdown=outcome.retry_in_s, retry=False
            )
        except Exception:  # the sweeper retries it when the broker is back
            logger.warning("could not schedule the retry of delivery %s", delivery_id)
    return outcome.status


@app.task
def deliveries_flush_all() -> int:
    """Beat: the outbox sweeper of every tenant."""
    return tenants_fan_out(deliveries_flush_tenant)


@app.task
def deliveries_flush_tenant() -> dict[str, int]:
    """Send every pending delivery that is due (first attempts the broker never got, retries
    whose backoff has passed), oldest first."""
    return outbox_flush(Delivery.objects.all(), delivery_send)


@app.task
def run_digests_all() -> int:
    """Beat, hourly: the run digests of every tenant."""
    return tenants_fan_out(run_digests_tenant)


@app.task
def run_digests_tenant() -> int:
    return len(evaluate.run_digests_send(now=timezone.now()))
