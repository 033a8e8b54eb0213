"""The overview's usage figures of a tenant over the tenant's days ``start`` to ``end`` (the month
of now by default): tokens and cost, runs by status and success rate, the top projects and models;
and what does not depend on the days: active runs and recent success rates (current tenant
schema; days are the tenant's, in its time zone ``zone``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from factory_portal.periods import local_date, month_last_day, month_of
from usage import selectors
from usage.selectors import reporting


@dataclass(frozen=True)
class Overview:
    period_start: date  # the first day shown (the tenant's)
    period_end: date  # the last day shown, inclusive
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


def overview(
    *, now: datetime, zone: ZoneInfo, start: date | None = None, end: date | None = None
) -> Overview:
    """The figures of the days ``start <= day <= end`` (default: the month of ``now``)."""
    today = local_date(now, zone)
    start = start or month_of(today)
    end = end or month_last_day(start)
    counts = selectors.run_status_counts(start=start, end=end)
    return Overview(
        period_start=start,
        period_end=end,
        today=today,
        now=now,
        tokens=selectors.token_totals(start=start, end=end + timedelta(days=1)),
        status_counts=counts,
        runs_total=sum(counts.values()),
        success_rate=reporting.status_success_rate(counts),
        active_runs=selectors.active_runs(limit=25),
        active_counts=selectors.active_run_counts(),
        complete_until=selectors.usage_complete_until(),
        recent_success=reporting.recent_success_rates(now=now),
        top_projects=selectors.top_costs(start=start, end=end, dimension="project"),
        top_models=selectors.top_costs(start=start, end=end, dimension="model"),
    )
