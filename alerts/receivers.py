"""Evaluation on ingest: after the ingest transaction commits, enqueue the evaluation; the ingest
request never waits for it, and a broker that is down only delays alerts until the next beat
evaluation (every rule is re-evaluated there, idempotently; finished runs wait in the
``PendingRunEvaluation`` outbox, written in the ingest transaction, for the sweeper)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.dispatch import receiver
from django_tenants.utils import schema_context

from alerts.models import PendingRunEvaluation
from usage.signals import runs_finished, usage_stored

logger = logging.getLogger(__name__)
USAGE_DEBOUNCE_S = 30  # at most one usage evaluation per tenant per 30 s of ingest


def _enqueue(task: Any, schema: str, *args: Any) -> None:
    try:
        with schema_context(schema):
            task.apply_async(args=list(args), retry=False)
    except Exception:
        logger.warning("broker unavailable: %s not enqueued (beat catches up)", task.name)


@receiver(usage_stored)
def usage_stored_evaluate(sender: Any, accepted: int, **kwargs: Any) -> None:
    schema = connection.schema_name

    def later() -> None:
        from alerts.tasks import alerts_after_usage

        try:
            first = cache.add(f"alerts:usage:{schema}", 1, timeout=USAGE_DEBOUNCE_S)
        except Exception:
            first = True
        if first:
            _enqueue(alerts_after_usage, schema)

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

        _enqueue(alerts_runs_finished, schema, run_ids)

    transaction.on_commit(later)
