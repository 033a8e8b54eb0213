"""Connects alerts to usage's ingest signals and billing's drift and run guard signals; each
receiver calls one service (``alerts.services.triggers``, which owns the outbox write and the
enqueue, ``alerts.services.operator`` or ``alerts.services.run_budget``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from alerts.services.operator import billed_drift_notify
from alerts.services.run_budget import run_over_budget_clear, run_over_budget_raise
from alerts.services.triggers import runs_evaluation_schedule, usage_evaluation_schedule
from billing.signals import billed_drift_exceeded, run_guard_cleared, run_guard_crossed
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


@receiver(run_guard_crossed)
def run_guard_crossed_raise(sender: Any, **kwargs: Any) -> None:
    fields = ("run_id", "project", "template", "state", "cost_so_far", "projected", "limit")
    run_over_budget_raise(crossed_at=kwargs["crossed_at"], **{k: kwargs[k] for k in fields})


@receiver(run_guard_cleared)
def run_guard_cleared_resolve(sender: Any, run_id: str, state: str, **kwargs: Any) -> None:
    # A run that ended has nothing left to page about: every open incident of it resolves.
    floor = "ok" if kwargs.get("finished") else state
    run_over_budget_clear(run_id=run_id, state=floor, now=timezone.now())
