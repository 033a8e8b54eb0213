"""Connects billing to usage's ingest signal: new history refreshes the tenant's forecasts
(``billing.services.forecasts_refresh_schedule``, debounced). ``usage`` never imports billing."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from billing.services import forecasts_refresh_schedule
from usage.signals import usage_stored


@receiver(usage_stored)
def usage_stored_forecast(sender: Any, accepted: int, **kwargs: Any) -> None:
    forecasts_refresh_schedule()
