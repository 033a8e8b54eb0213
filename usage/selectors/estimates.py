"""The portal's estimated AI cost per provider, model and UTC day, for one tenant (the schema of
the current connection): what the operator's bills from AI providers are compared with.

Reads the hourly LLM rollup (``hour`` is a UTC hour start) so a day is exactly 24 UTC hours,
whatever the tenant's time zone; it must not apply a tenant's period rules.
"""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncDate

from factory_portal import periods
from usage.models import LlmUsageHourly


def estimated_cost_by_model_day(*, start: date, end: date) -> dict[tuple[str, str, date], Decimal]:
    """USD cost (10 decimal places, re-pricing corrections included) per (provider, model, UTC
    day) for UTC days ``start <= day < end``, with provider and model as clients reported them;
    keys without cost are absent."""
    rows = (
        LlmUsageHourly.objects.filter(
            hour__gte=periods.day_start(start), hour__lt=periods.day_start(end)
        )
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("provider", "model", "day")
        .annotate(cost=Sum("cost"))
        .order_by()
    )
    return {(r["provider"], r["model"], r["day"]): r["cost"] for r in rows if r["cost"]}
