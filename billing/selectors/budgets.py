"""Reads of per-tenant billing data: budget status against actual and forecast spend."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from billing.domain.forecasting import ForecastDay
from billing.models import Budget, CostForecast
from billing.selectors.periods import PeriodCost, month_cost
from factory_portal.money import percent
from factory_portal.periods import local_date, month_last_day, month_of, next_month, zone
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors

OK, AT_RISK, EXCEEDED = "ok", "at_risk", "exceeded"


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    month: date
    spent: Decimal  # the month to date, today included, on the budget's basis
    forecast_month_end: Decimal | None  # spent + forecast of the rest of the month (mean)
    forecast_month_end_hi80: Decimal | None
    status: str  # ok | at_risk | exceeded
    actual_thresholds_crossed: list[int]
    forecast_thresholds_crossed: list[int]
    crossing_expected: date | None  # when the budget is expected to be exceeded
    crossing_lo80: date | None
    crossing_hi80: date | None


def _crossing(
    forecast: CostForecast, spent: Decimal, amount: Decimal, month_last: date
) -> tuple[date | None, date | None, date | None]:
    """The day spend is expected to pass ``amount`` within the month, by the running total's
    mean, and its 80% interval: earliest by the upper bound, latest by the lower bound."""

    def first_day(running: Callable[[ForecastDay], Decimal]) -> date | None:
        for row in forecast.days:
            if row.day > month_last:
                return None
            if spent + running(row) >= amount:
                return row.day
        return None

    return (
        first_day(lambda row: row.running_mean),
        first_day(lambda row: row.running_hi80),
        first_day(lambda row: row.running_lo80),
    )


@dataclass(frozen=True)
class MonthEnd:
    """What a month is expected to cost in all (USD, AI): its days before today as spent,
    today's actual or expected cost whichever is higher, and the expected cost of the days
    left; the mean and the 80% interval."""

    mean: Decimal
    lo80: Decimal
    hi80: Decimal


def month_end_expected(
    forecast: CostForecast, *, spent: Decimal, today_actual: Decimal, today: date
) -> MonthEnd:
    """The month-end figure of ``spent`` (the month to date, today included, of which
    ``today_actual`` is today's) and the forecast starting ``today``: the one rule of the
    budgets and the overview (a forecast "of the rest of the month" counts today, which the
    month to date counts too: added together they counted today twice)."""
    before_today = spent - today_actual
    today_row = next((row for row in forecast.days if row.day == today), None)

    def bound(key: str) -> Decimal:
        expected_today = getattr(today_row, key) if today_row else Decimal(0)
        rest = Decimal(forecast.month_end[key]) - expected_today
        return before_today + max(today_actual, expected_today) + rest

    return MonthEnd(mean=bound("mean"), lo80=bound("lo80"), hi80=bound("hi80"))


def budget_status(
    budget: Budget,
    *,
    tenant: Tenant,
    today: date,
    month_costs: PeriodCost | None = None,
    forecasts: Mapping[str, CostForecast] | None = None,
) -> BudgetStatus:
    """The budget's month to date (the tenant's month of its day ``today``, today included) on
    its basis (AI, or AI plus the month's allocated infrastructure), with the month-end
    forecast: the complete days so far, today's actual or expected cost whichever is higher,
    and the expected cost of the days left.

    ``month_costs`` (the tenant's cost of that month, every project) and ``forecasts`` (the
    stored forecasts that start ``today``, by project; a project absent has none) are read here
    unless the caller already has them."""
    month = month_of(today)
    month_last = month_last_day(month)
    if month_costs is None or (month_costs.start, month_costs.end) != (month, next_month(month)):
        cost = month_cost(tenant=tenant, month=month, project=budget.project)
    else:
        cost = month_costs.of_project(budget.project)
    spent = cost.total if budget.basis == Budget.Basis.TOTAL else cost.ai
    if forecasts is None:
        forecast = CostForecast.objects.filter(project=budget.project, start=today).first()
    else:
        forecast = forecasts.get(budget.project)
    month_end = hi80 = None
    expected = earliest = latest = None
    if forecast is not None:
        today_actual = sum(
            usage_selectors.daily_token_cost(
                start=today, end=today, project=budget.project
            ).values(),
            Decimal(0),
        )
        before_today = spent - today_actual
        projected = month_end_expected(
            forecast, spent=spent, today_actual=today_actual, today=today
        )
        month_end, hi80 = projected.mean, projected.hi80
        expected, earliest, latest = _crossing(forecast, before_today, budget.amount, month_last)
    spent_percent = percent(spent, budget.amount)
    forecast_percent = percent(month_end, budget.amount) if month_end is not None else None
    status = OK
    if spent >= budget.amount:
        status = EXCEEDED
        expected = earliest = latest = None  # it has happened: nothing is "expected" any more
    elif month_end is not None and month_end >= budget.amount:
        status = AT_RISK
    return BudgetStatus(
        budget=budget,
        month=month,
        spent=spent,
        forecast_month_end=month_end,
        forecast_month_end_hi80=hi80,
        status=status,
        actual_thresholds_crossed=[t for t in budget.thresholds if spent_percent >= t],
        forecast_thresholds_crossed=[
            t for t in budget.thresholds if forecast_percent is not None and forecast_percent >= t
        ],
        crossing_expected=expected,
        crossing_lo80=earliest,
        crossing_hi80=latest,
    )


def budgets_status(
    *,
    tenant: Tenant,
    now: datetime,
    month_costs: PeriodCost | None = None,
    forecasts: Iterable[CostForecast | None] = (),
) -> list[BudgetStatus]:
    """Every budget of the tenant on its day of ``now`` (its time zone). The month's cost is
    read once for every budget, and the forecasts in one query; ``month_costs`` (the tenant's
    cost of that month) and ``forecasts`` (stored forecasts, by any project) are not read again
    when the caller has them."""
    today = local_date(now, zone(tenant.timezone))
    budgets = list(Budget.objects.order_by("project"))
    if not budgets:
        return []
    month = month_of(today)
    if month_costs is None or (month_costs.start, month_costs.end) != (month, next_month(month)):
        month_costs = month_cost(tenant=tenant, month=month)
    known = [f for f in forecasts if f is not None]
    starting_today = {f.project: f for f in known if f.start == today}
    missing = {b.project for b in budgets} - {f.project for f in known}
    if missing:
        read = CostForecast.objects.filter(project__in=missing, start=today)
        starting_today.update((f.project, f) for f in read)
    return [
        budget_status(
            b, tenant=tenant, today=today, month_costs=month_costs, forecasts=starting_today
        )
        for b in budgets
    ]
