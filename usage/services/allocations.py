"""Infrastructure cost allocated to runs, as billing computed it (``RunAllocatedCost``).

Usage does not allocate; it keeps each run's allocated amount per month so that run history and
the runs API can show total cost (AI + infrastructure) and sort by it. Billing replaces a month's
amounts whenever it recomputes them (a new allocation run, or the month's drivers changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from django.db import transaction

from usage.models import Run, RunAllocatedCost


def run_allocations_replace(*, month: date, amounts: Mapping[str, Decimal]) -> int:
    """Set the month's allocated amounts (client run id -> USD) of the current schema, replacing
    the month's previous ones; runs absent from ``amounts`` have none. Answers how many runs
    have an amount."""
    with transaction.atomic():
        RunAllocatedCost.objects.filter(month=month).delete()
        pks = dict(
            Run.objects.filter(run_id__in=[r for r, a in amounts.items() if a]).values_list(
                "run_id", "pk"
            )
        )
        rows = [
            RunAllocatedCost(run_id=pks[run_id], month=month, amount=amount)
            for run_id, amount in amounts.items()
            if amount and run_id in pks
        ]
        RunAllocatedCost.objects.bulk_create(rows, batch_size=5000)
    return len(rows)
