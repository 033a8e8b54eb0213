"""The overview's usage figures of a tenant: month-to-date tokens and cost, runs by status and
success rate, active runs, recent success rates and the top projects and models (current tenant
schema; the month and its days are the tenant's, in its time zone ``zone``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from factory_portal.periods import local_date, month_of, next_month
from usage import selectors
from usage.selectors import reporting


@dataclass(frozen=True)
class Overview:
    period_start: date  # the first day of the tenant's month
    today: date  # the tenant's day of ``now``
    now: datetime
    tokens: selectors.TokenTotals
    status_counts: dict[str, int]
    runs_total: int
    success_rate: Decimal | None
    active_runs: list[selectors.ActiveRun]
    active_counts: dict[str, int]
    recent_success: dict[str, Decimal | None]
    top_projects: list[tuple[str, Decimal]]
    top_models: list[tuple[str, Decimal]]

    @property
    def active_total(self) -> int:
        return sum(self.active_counts.values())

    complete_until: datetime | None


def overview(*, now: datetime, zone: ZoneInfo) -> Overview:
    today = local_date(now, zone)
    start = month_of(today)
    counts = selectors.run_status_counts(start=start, end=today)
    return Overview(
        period_start=start,
        today=today,
        now=now,
        tokens=selectors.token_totals(start=start, end=next_month(start)),
        status_counts=counts,
        runs_total=sum(counts.values()),
        success_rate=reporting.status_success_rate(counts),
        active_runs=selectors.active_runs(limit=25),
        active_counts=selectors.active_run_counts(),
        complete_until=selectors.usage_complete_until(),
        recent_success=reporting.recent_success_rates(now=now),
        top_projects=selectors.top_costs(start=start, end=today, dimension="project"),
        top_models=selectors.top_costs(start=start, end=today, dimension="model"),
    )
