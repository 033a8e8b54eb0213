"""Connects alerts to usage's ingest signals and billing's drift signal; each receiver calls one
service (``alerts.services.triggers``, which owns the outbox write and the enqueue, or
``alerts.services.operator``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from alerts.services.operator import billed_drift_notify
from alerts.services.triggers import runs_evaluation_schedule, usage_evaluation_schedule
from billing.signals import billed_drift_exceeded
from usage.signals import runs_finished, usage_stored


@receiver(usage_stored)
def usage_stored_evaluate(sender: Any, accepted: int, **kwargs: Any) -> None:
    usage_evaluation_schedule()


@receiver(runs_finished)
def runs_finished_evaluate(sender: Any, run_ids: list[int], **kwargs: Any) -> None:
    runs_evaluation_schedule(run_ids=run_ids)


@receiver(billed_drift_exceeded)
def billed_drift_exceeded_notify(sender: Any, alert_id: int, **kwargs: Any) -> None:
    billed_drift_notify(alert_id=alert_id)
