"""Connects billing to usage's ingest signals: new history refreshes the tenant's forecasts
(``billing.services.forecasts_refresh_schedule``, debounced 30 s) and re-evaluates its run guards
(``run_guards_schedule``, debounced 1 s, only with run budgets); a run's end gives its guard
final figures (``run_guards_finish``: those runs, not debounced).
``usage`` never imports billing."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from billing.services import forecasts_refresh_schedule, run_guards_finish, run_guards_schedule
from usage.signals import runs_finished, usage_stored


@receiver(usage_stored)
def usage_stored_forecast(sender: Any, accepted: int, **kwargs: Any) -> None:
    forecasts_refresh_schedule()


@receiver(usage_stored)
def usage_stored_guard(sender: Any, accepted: int, **kwargs: Any) -> None:
    run_guards_schedule()


@receiver(runs_finished)
def runs_finished_guard(sender: Any, run_ids: list[int], **kwargs: Any) -> None:
    run_guards_finish(run_pks=run_ids)
