"""Evaluation on ingest: after the ingest transaction commits, enqueue the evaluation; the ingest
request never waits for it, and a broker that is down only delays alerts until the next beat
evaluation (every rule is re-evaluated there, idempotently; finished runs wait in the
``PendingRunEvaluation`` outbox, written in the ingest transaction, for the sweeper).

Called by ``alerts.receivers`` (usage's ingest signals) inside the ingest transaction.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection, transaction

from alerts.models import PendingRunEvaluation
from factory_portal.broker import enqueue

# At most one usage evaluation per tenant per 30 s of ingest. It runs at the end of the window,
# so it sees every batch that arrived during it.
USAGE_DEBOUNCE_S = 30


def usage_evaluation_schedule() -> None:
    """After commit, enqueue the budget and anomaly evaluation of the current tenant (debounced)."""
    schema = connection.schema_name

    def later() -> None:
        from alerts.tasks import alerts_after_usage

        try:
            first = cache.add(f"alerts:usage:{schema}", 1, timeout=USAGE_DEBOUNCE_S - 1)
        except Exception:  # no cache, no debounce: the broker back-off still bounds the cost
            first = True
        if first:
            enqueue(alerts_after_usage, schema=schema, countdown=USAGE_DEBOUNCE_S)

    transaction.on_commit(later)


def runs_evaluation_schedule(*, run_ids: list[int]) -> None:
    """Record finished runs in the outbox (commits with the runs, so the evaluation happens even
    if the task is lost) and enqueue their evaluation after commit."""
    PendingRunEvaluation.objects.bulk_create(
        [PendingRunEvaluation(run_id=pk) for pk in run_ids], ignore_conflicts=True
    )
    schema = connection.schema_name

    def later() -> None:
        from alerts.tasks import alerts_runs_finished

        enqueue(alerts_runs_finished, schema=schema, args=[run_ids])

    transaction.on_commit(later)
