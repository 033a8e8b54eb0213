"""Reads of a tenant's prepaid commitments and credits (run in the tenant's schema): each one's
drawdown to date, what is left and when it is expected to run out; and a month's drawdown for
the exports. The rules are ``billing.domain.commitments``'s; this module fetches the spend they
need: AI cost per tenant day (the daily rollups) and each month's allocated infrastructure
(project-level allocation lines, as ``periods.period_cost`` reads them) on the month's last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from billing.domain.commitments import (
    DaySpend,
    Drawdown,
    Exhaustion,
    Terms,
    consumed_percent,
    drawdown,
    exhaustion,
)
from billing.domain.forecasting import ForecastDay
from billing.models import CostForecast
from billing.operator.models import AllocationLine, Commitment
from factory_portal.money import quantize_cents
from factory_portal.periods import local_date, month_last_day, months_spanning, zone
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors

ZERO = Decimal(0)


@dataclass(frozen=True)
class CommitmentStatus:
    commitment: Commitment
    today: date
    drawdown: Drawdown
    exhaustion: Exhaustion

    @property
    def consumed(self) -> Decimal:
        """Consumed to date, to the cent."""
        return quantize_cents(self.drawdown.consumed)

    @property
    def remaining(self) -> Decimal:
        return self.commitment.amount - self.consumed

    @property
    def consumed_percent(self) -> Decimal:
        return consumed_percent(self.drawdown)

    @property
    def used_ratio(self) -> Decimal:
        """Consumed / amount (a ratio, shown as a percentage)."""
        return self.drawdown.consumed / self.commitment.amount

    @property
    def state(self) -> str:
        """upcoming | active | exhausted | ended"""
        if self.drawdown.remaining <= 0:
            return "exhausted"
        if self.today < self.commitment.start_date:
            return "upcoming"
        return "active" if self.today <= self.commitment.last_day else "ended"


def terms_of(commitment: Commitment) -> Terms:
    return Terms(
        id=commitment.pk,
        kind=commitment.kind,
        amount=commitment.amount,
        start=commitment.start_date,
        last=commitment.last_day,
        covers=commitment.covers,
    )


def covered_spend(*, tenant: Tenant, start: date, end: date) -> dict[date, DaySpend]:
    """The tenant's spend of its days ``start <= day <= end``: AI cost per day, and each month's
    allocated infrastructure (a draft or closed allocation) on the month's last day."""
    ai = usage_selectors.daily_token_cost(start=start, end=end)
    months = [m for m in months_spanning(start, end) if start <= month_last_day(m) <= end]
    infra = dict(
        AllocationLine.objects.filter(run__period__in=months, tenant=tenant, level="project")
        .values("run__period")
        .annotate(amount=Sum("amount"))
        .values_list("run__period", "amount")
    )
    days = set(ai) | {month_last_day(m) for m in infra}
    return {
        day: DaySpend(
            ai=ai.get(day, ZERO),
            infrastructure=infra.get(day.replace(day=1), ZERO)
            if day == month_last_day(day)
            else ZERO,
        )
        for day in days
    }


def _drawdowns(tenant: Tenant, commitments: list[Commitment], through: date) -> dict[int, Drawdown]:
    if not commitments:
        return {}
    start = min(c.start_date for c in commitments)
    end = min(through, max(c.last_day for c in commitments))
    spend = covered_spend(tenant=tenant, start=start, end=end) if start <= end else {}
    return drawdown([terms_of(c) for c in commitments], spend, through=through)


def commitments_status(*, tenant: Tenant, today: date) -> list[CommitmentStatus]:
    """Every commitment of the tenant on its day ``today`` (today's spend so far included),
    soonest ending first, with the forecast exhaustion (the tenant's latest cost forecast, from
    tomorrow)."""
    commitments = list(Commitment.objects.filter(tenant=tenant).order_by("end_date", "pk"))
    actual = _drawdowns(tenant, commitments, today)
    forecast = CostForecast.objects.filter(project="").order_by("-computed_at").first()
    rows: list[_Running | ForecastDay] = []
    if forecast is not None:
        rows = [r for r in forecast.days if r.day > today]
        # The running paths count from the forecast's first day: restart them after today.
        before = next((r for r in reversed(forecast.days) if r.day <= today), None)
        if before is not None:
            rows = [_shifted(r, before) for r in forecast.days if r.day > today]
    ends = exhaustion(actual, rows, after=today)
    return [CommitmentStatus(c, today, actual[c.pk], ends[c.pk]) for c in commitments]


@dataclass(frozen=True)
class _Running:
    day: date
    running_mean: Decimal
    running_lo80: Decimal
    running_hi80: Decimal


def _shifted(row: ForecastDay, before: ForecastDay) -> _Running:
    return _Running(
        day=row.day,
        running_mean=row.running_mean - before.running_mean,
        running_lo80=row.running_lo80 - before.running_lo80,
        running_hi80=row.running_hi80 - before.running_hi80,
    )


def commitments_status_now(*, tenant: Tenant, now: datetime) -> list[CommitmentStatus]:
    return commitments_status(tenant=tenant, today=local_date(now, zone(tenant.timezone)))


@dataclass(frozen=True)
class MonthDrawdown:
    """One commitment's drawdown in a month (exact): used, and the unused rest when it ended in
    that month (its last day in it)."""

    commitment: Commitment
    used: Decimal
    unused: Decimal | None


def month_drawdown(
    *, tenant: Tenant, month: date, today: date | None = None
) -> list[MonthDrawdown]:
    """The drawdown of each commitment active in the tenant's month ``month`` (its first day);
    the unused rest only once its last day is over (before the tenant's ``today``, default now)."""
    today = today or local_date(timezone.now(), zone(tenant.timezone))
    last = month_last_day(month)
    commitments = list(
        Commitment.objects.filter(tenant=tenant, start_date__lte=last).order_by("end_date", "pk")
    )
    commitments = [c for c in commitments if c.last_day >= month]
    if not commitments:
        return []
    # Earlier commitments that ended before the month still shaped the order: all of them.
    every = list(Commitment.objects.filter(tenant=tenant, start_date__lte=last))
    done = _drawdowns(tenant, every, last)
    out = []
    for c in commitments:
        d = done[c.pk]
        used = d.drawn_between(month, last + timedelta(days=1))
        ended_here = month <= c.last_day <= last and c.last_day < today
        out.append(MonthDrawdown(c, used, d.remaining if ended_here else None))
    return out
