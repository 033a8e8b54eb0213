"""What a budget notice announces and says (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from alerts.domain.budgets import Announced, BudgetFigures, budget_notice

TODAY = date(2026, 11, 20)
FIGURES = BudgetFigures(
    project="web",
    total_basis=False,
    amount=Decimal("1000.00"),
    thresholds=(50, 80, 100),
    today=TODAY,
    spent=Decimal(0),
    forecast_month_end=None,
    month_last=date(2026, 11, 30),
    crossing_expected=None,
    crossing_lo80=None,
    crossing_hi80=None,
)


def test_just_below_a_threshold_is_nothing_and_the_percentage_is_never_rounded_up():
    assert budget_notice(replace(FIGURES, spent=Decimal("499.999")), Announced()) is None
    notice = budget_notice(replace(FIGURES, spent=Decimal("999.996")), Announced())
    assert notice is not None and notice.threshold == 80 and notice.crossed == (50, 80)
    # $1,000.00 shown (the page's cent) but 99%, reached, a warning: not yet exceeded.
    assert notice.title == "99% of the November budget of project web spent"
    assert notice.body.startswith("$1,000.00 of $1,000.00 (thresholds 50% and 80% reached).")
    assert notice.severity == "warning" and "exceeded" not in notice.body


def test_the_interval_is_named_only_when_it_starts_after_today():
    figures = replace(
        FIGURES,
        thresholds=(100,),
        spent=Decimal(400),
        forecast_month_end=Decimal(1200),
        crossing_expected=date(2026, 11, 27),
        crossing_lo80=date(2026, 11, 24),
        crossing_hi80=date(2026, 11, 30),
    )
    notice = budget_notice(figures, Announced())
    assert notice is not None and notice.basis == "forecast"
    assert notice.body.endswith(
        "expected to exceed the budget on 27 November (80% interval 24 November to 30 November)."
    )
    early = budget_notice(replace(figures, crossing_lo80=TODAY), Announced())
    assert early is not None
    assert early.body.endswith("expected to exceed the budget on 27 November.")


def test_forecast_thresholds_over_the_budget_are_reached_not_exceeded():
    figures = replace(
        FIGURES, thresholds=(100, 150), spent=Decimal(1100), forecast_month_end=Decimal(1600)
    )
    notice = budget_notice(figures, Announced(actual=100))
    assert notice is not None and notice.basis == "forecast" and notice.crossed == (150,)
    assert notice.title == "Forecast to reach 150% of the November budget of project web"
    assert "expected" not in notice.body
    assert budget_notice(figures, Announced(actual=100, forecast=150)) is None


@given(
    spent=st.decimals(min_value=0, max_value=3000, places=2),
    forecast=st.none() | st.decimals(min_value=0, max_value=3000, places=2),
    announced_actual=st.sampled_from([0, 50, 80, 100, 150]),
    announced_forecast=st.sampled_from([0, 50, 80, 100, 150]),
)
def test_never_contradictory(spent, forecast, announced_actual, announced_forecast):
    figures = replace(
        FIGURES,
        thresholds=(50, 80, 100, 150),
        spent=spent,
        forecast_month_end=None if forecast is None else max(forecast, spent),
        crossing_expected=date(2026, 11, 25),
    )
    notice = budget_notice(figures, Announced(announced_actual, announced_forecast))
    if notice is None:
        return
    announced = max(announced_actual, announced_forecast)
    text = f"{notice.title} {notice.body}"
    if spent >= figures.amount:  # exceeded: said so, critical, nothing "expected" of it
        assert notice.basis == "actual" or announced_actual >= 100
        assert "expected" not in text and "to be exceeded" not in text
    else:
        assert "exceeded" not in text.replace("to be exceeded", "")
    if notice.basis == "forecast":
        assert notice.severity == "warning"
        assert all(t > announced and spent < figures.amount * t / 100 for t in notice.crossed)
    else:
        assert notice.severity == ("critical" if spent >= figures.amount else "warning")
        assert all(t > announced_actual for t in notice.crossed)
        assert all(t > announced for t in notice.forecast_crossed)
