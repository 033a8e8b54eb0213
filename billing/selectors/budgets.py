"""Reads of per-tenant billing data: budget status against actual and forecast spend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from billing.domain.forecasting import ForecastDay
from billing.models import Budget, CostForecast
from factory_portal.money import percent
from factory_portal.periods import month_last_day, month_of
from usage import selectors as usage_selectors

OK, AT_RISK, EXCEEDED = "ok", "at_risk", "exceeded"


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    month: date
    spent: Decimal  # AI cost of the month up to yesterday (complete days)
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


def budget_status(budget: Budget, *, today: date) -> BudgetStatus:
    month = month_of(today)
    month_last = month_last_day(month)
    yesterday = today - timedelta(days=1)
    spent = (
        sum(
            usage_selectors.daily_token_cost(
                start=month, end=yesterday, project=budget.project
            ).values(),
            Decimal(0),
        )
        if today > month
        else Decimal(0)
    )
    forecast = CostForecast.objects.filter(project=budget.project, start=today).first()
    month_end = hi80 = None
    expected = earliest = latest = None
    if forecast is not None:
        month_end = spent + Decimal(forecast.month_end["mean"])
        hi80 = spent + Decimal(forecast.month_end["hi80"])
        expected, earliest, latest = _crossing(forecast, spent, budget.amount, month_last)
    spent_percent = percent(spent, budget.amount)
    forecast_percent = percent(month_end, budget.amount) if month_end is not None else None
    status = OK
    if spent >= budget.amount:
        status = EXCEEDED
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


def budgets_status(*, today: date) -> list[BudgetStatus]:
    return [budget_status(b, today=today) for b in Budget.objects.order_by("project")]
