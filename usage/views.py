"""Tenant pages over usage: the overview. Thin: selectors do the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from factory_portal.periods import month_start
from usage import selectors
from usage.models import RunStatus


@dataclass(frozen=True)
class Overview:
    period_start: datetime
    now: datetime
    tokens: selectors.TokenTotals
    status_counts: dict[str, int]
    runs_total: int
    success_rate: Decimal | None
    active_runs: list[selectors.ActiveRun]
    active_counts: dict[str, int]

    @property
    def active_total(self) -> int:
        return sum(self.active_counts.values())

    complete_until: datetime | None


def overview_build(*, now: datetime, tz_name: str) -> Overview:
    start = month_start(now, tz_name)
    counts = selectors.run_status_counts(start=start, end=now)
    finished = sum(counts[s] for s in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED))
    success_rate = (
        (Decimal(counts[RunStatus.SUCCEEDED]) * 100 / finished).quantize(Decimal("0.1"))
        if finished
        else None
    )
    return Overview(
        period_start=start,
        now=now,
        tokens=selectors.token_totals(start=start, end=now),
        status_counts=counts,
        runs_total=sum(counts.values()),
        success_rate=success_rate,
        active_runs=selectors.active_runs(limit=25),
        active_counts=selectors.active_run_counts(),
        complete_until=selectors.usage_complete_until(),
    )


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    tenant = connection.tenant
    data = overview_build(now=timezone.now(), tz_name=tenant.timezone)
    return render(request, "usage/overview.html", {"overview": data, "tenant": tenant})
