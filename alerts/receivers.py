"""Evaluation on ingest: after the ingest transaction commits, enqueue the evaluation; the ingest
request never waits for it, and a broker that is down only delays alerts until the next beat
evaluation (every rule is re-evaluated there, idempotently; finished runs wait in the
``PendingRunEvaluation`` outbox, written in the ingest transaction, for the sweeper)."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.dispatch import receiver

from alerts.models import PendingRunEvaluation
from factory_portal.broker import enqueue
from usage.signals import runs_finished, usage_stored

# At most one usage evaluation per tenant per 30 s of ingest. It runs at the end of the window,
# so it sees every batch that arrived during it.
USAGE_DEBOUNCE_S = 30


@receiver(usage_stored)
def usage_stored_evaluate(sender: Any, accepted: int, **kwargs: Any) -> None:
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


@receiver(runs_finished)
def runs_finished_evaluate(sender: Any, run_ids: list[int], **kwargs: Any) -> None:
    # The outbox row commits with the run: the evaluation happens even if the task is lost.
    PendingRunEvaluation.objects.bulk_create(
        [PendingRunEvaluation(run_id=pk) for pk in run_ids], ignore_conflicts=True
    )
    schema = connection.schema_name

    def later() -> None:
        from alerts.tasks import alerts_runs_finished

        enqueue(alerts_runs_finished, schema=schema, args=[run_ids])

    transaction.on_commit(later)
