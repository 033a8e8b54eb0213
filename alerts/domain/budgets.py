"""What a budget alert says (pure): which thresholds an evaluation announces, in one notice, and
its words. It decides nothing about storage or locking (``alerts.services.evaluate`` does) and
computes no figure: spend, forecast and crossing days are the budgets page's
(``billing.selectors.budgets.budget_status``), shown with the page's rounding (``money.usd``).

The rules:

- All thresholds newly crossed by actual spend make one notice naming the highest ("105% of the
  November budget of project web spent: $1,050.00 of $1,000.00 (thresholds 50%, 80% and 100%
  crossed)"). A threshold at or below the highest already announced this month is never
  announced again, so the lower ones of a jump never fire later.
- Forecast thresholds are announced only above the actual spend (a threshold actual spend has
  reached is never "forecast to" be reached) and above every threshold announced this month. When
  an actual notice is due in the same evaluation, the newly forecast thresholds ride on it (its
  "on pace for" sentence) instead of making a second notice.
- "Exceeded" is said of actual spend at or over the budget (critical); "reached" below it
  (warning). "Expected to exceed" is said only while actual spend is below the budget, and a
  crossing day is named only when it is after today. Forecast notices are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from factory_portal.money import percent, percent_of, usd

ACTUAL, FORECAST = "actual", "forecast"


@dataclass(frozen=True)
class BudgetFigures:
    """One budget on one day, as the budgets page shows it."""

    project: str  # "" for the whole tenant
    total_basis: bool  # AI plus allocated infrastructure (else AI only)
    amount: Decimal  # USD, the monthly budget
    thresholds: tuple[int, ...]  # percent of ``amount``
    today: date  # the tenant's day
    spent: Decimal  # USD, month to date, today included, unrounded
    forecast_month_end: Decimal | None  # USD, unrounded
    month_last: date
    crossing_expected: date | None  # the day spend is expected to pass ``amount``
    crossing_lo80: date | None
    crossing_hi80: date | None


@dataclass(frozen=True)
class Announced:
    """The highest thresholds already announced this month for one budget (0: none)."""

    actual: int = 0
    forecast: int = 0


@dataclass(frozen=True)
class BudgetNotice:
    basis: str  # ACTUAL or FORECAST: which spend crossed ``threshold``
    threshold: int  # the highest threshold newly crossed: the one the notice is named by
    crossed: tuple[int, ...]  # every threshold it announces on ``basis``, ascending
    forecast_crossed: tuple[int, ...]  # forecast thresholds an actual notice also announces
    severity: str
    title: str
    body: str


def budget_notice(figures: BudgetFigures, announced: Announced) -> BudgetNotice | None:
    """The notice one evaluation raises for a budget, or None when nothing new is crossed."""
    f = figures
    thresholds = sorted(set(f.thresholds))
    actual = tuple(
        t for t in thresholds if f.spent >= percent_of(f.amount, t) and t > announced.actual
    )
    forecast = tuple(
        t
        for t in thresholds
        if f.forecast_month_end is not None
        and f.forecast_month_end >= percent_of(f.amount, t)
        and f.spent < percent_of(f.amount, t)
        and t > max(announced.actual, announced.forecast)
    )
    if actual:
        return _actual_notice(f, actual, forecast)
    if forecast and f.forecast_month_end is not None:
        return _forecast_notice(f, f.forecast_month_end, forecast)
    return None


def _actual_notice(
    f: BudgetFigures, crossed: tuple[int, ...], forecast: tuple[int, ...]
) -> BudgetNotice:
    exceeded = f.spent >= f.amount
    title = f"{_whole_percent(f.spent, f.amount)}% of the {_budget_name(f)} spent"
    if forecast:
        highest = forecast[-1]
        title += (
            ", forecast to be exceeded" if highest == 100 else f", forecast to reach {highest}%"
        )
    body = (
        f"{usd(f.spent)} of {usd(f.amount)} "
        f"({_listed(crossed)} {'crossed' if exceeded else 'reached'})."
    )
    if exceeded:
        body += f" Budget exceeded by {usd(f.spent - f.amount)}."
    body += f" {_what(f)} this month to date, today included."
    if f.forecast_month_end is not None:
        body += f" {_pace(f, f.forecast_month_end, forecast)}"
    return BudgetNotice(
        basis=ACTUAL,
        threshold=crossed[-1],
        crossed=crossed,
        forecast_crossed=forecast,
        severity="critical" if exceeded else "warning",
        title=title,
        body=body,
    )


def _forecast_notice(
    f: BudgetFigures, month_end: Decimal, crossed: tuple[int, ...]
) -> BudgetNotice:
    highest = crossed[-1]
    if highest == 100:
        title = f"Forecast to exceed the {_budget_name(f)}"
    else:
        title = f"Forecast to reach {highest}% of the {_budget_name(f)}"
    body = (
        f"{usd(f.spent)} of {usd(f.amount)} spent so far. {_what(f)} this month to date, "
        f"today included. {_pace(f, month_end, crossed)}"
    )
    return BudgetNotice(
        basis=FORECAST,
        threshold=highest,
        crossed=crossed,
        forecast_crossed=(),
        severity="warning",
        title=title,
        body=body,
    )


def _pace(f: BudgetFigures, month_end: Decimal, forecast: tuple[int, ...]) -> str:
    """``On pace for $1,100.00 by 30 November (110% of the budget; threshold 100% on forecast):
    expected to exceed the budget on 29 November.``"""
    detail = f"{_whole_percent(month_end, f.amount)}% of the budget"
    if forecast:
        detail += f"; {_listed(forecast)} on forecast"
    text = f"On pace for {usd(month_end)} by {_day(f.month_last)} ({detail})"
    if f.spent < f.amount <= month_end:
        text += f": {_expected(f)}"
    return text + "."


def _expected(f: BudgetFigures) -> str:
    """When the budget is expected to be exceeded (only said while it is not)."""
    day = f.crossing_expected
    if day is None or day <= f.today:
        return f"expected to exceed the budget by the end of {f.month_last:%B}"
    text = f"expected to exceed the budget on {_day(day)}"
    if f.crossing_lo80 and f.crossing_hi80 and f.crossing_lo80 > f.today:
        text += f" (80% interval {_day(f.crossing_lo80)} to {_day(f.crossing_hi80)})"
    return text


def _budget_name(f: BudgetFigures) -> str:
    """``November budget of project web``; ``November budget`` for the whole tenant's."""
    of = f" of project {f.project}" if f.project else ""
    return f"{f.month_last:%B} budget{of}"


def _what(f: BudgetFigures) -> str:
    return "Total spend (AI and infrastructure)" if f.total_basis else "AI spend"


def _listed(thresholds: tuple[int, ...]) -> str:
    """``threshold 80%``; ``thresholds 50%, 80% and 100%``."""
    names = [f"{t}%" for t in thresholds]
    if len(names) == 1:
        return f"threshold {names[0]}"
    return f"thresholds {', '.join(names[:-1])} and {names[-1]}"


def _whole_percent(part: Decimal, whole: Decimal) -> int:
    """Rounded down, so a notice never claims a percentage spend has not reached."""
    return int(percent(part, whole))


def _day(day: date) -> str:
    return f"{day.day} {day:%B}"
