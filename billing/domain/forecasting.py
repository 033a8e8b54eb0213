"""Forecasting daily cost with prediction intervals (pure: pandas in, dataclasses out).

Candidates: Holt-Winters (statsmodels; damped additive trend, additive weekly seasonality, fitted
on the last 120 days so it follows trend changes), seasonal naive (the same weekday last week),
and, for histories under four weeks, the recent mean. The method is chosen per series by a
rolling-origin backtest (MASE against the seasonal-naive baseline). Intervals, month totals and
the day a budget is crossed all come from simulated future paths (500), so the interval of a sum
is right, not the sum of intervals.

Costs are modelled as floats inside the statistical model, since a forecast is an estimate, not
booked money; results are returned as Decimal rounded to the cent.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from factory_portal.money import cents_from_float

SEASON = 7
FIT_WINDOW = 120
PATHS = 500
MIN_FOR_MODEL = 28
METHODS = ("ets", "seasonal_naive", "mean")


def _money(value: float) -> Decimal:
    return cents_from_float(max(float(value), 0.0))


@dataclass(frozen=True)
class Interval:
    mean: Decimal
    lo80: Decimal
    hi80: Decimal
    lo95: Decimal
    hi95: Decimal


def _interval(samples: np.ndarray, mean: float | None = None) -> Interval:
    lo95, lo80, hi80, hi95 = np.quantile(samples, [0.025, 0.10, 0.90, 0.975])
    centre = float(np.mean(samples)) if mean is None else mean
    return Interval(_money(centre), _money(lo80), _money(hi80), _money(lo95), _money(hi95))


@dataclass(frozen=True)
class Forecast:
    method: str
    start: date  # first forecast day
    means: np.ndarray = field(repr=False)  # per day
    paths: np.ndarray = field(repr=False)  # days x paths

    @property
    def horizon(self) -> int:
        return len(self.means)

    def day(self, offset: int) -> Interval:
        return _interval(self.paths[offset], float(self.means[offset]))

    def total(self, days: int) -> Interval:
        """The sum of the first ``days`` forecast days."""
        days = min(days, self.horizon)
        if days <= 0:
            zero = Decimal("0.00")
            return Interval(zero, zero, zero, zero, zero)
        return _interval(self.paths[:days].sum(axis=0), float(self.means[:days].sum()))


@dataclass(frozen=True)
class ForecastDay:
    """One day of a stored forecast: the day's cost interval and the running total's (from the
    first forecast day; its bounds are quantiles of the simulated running totals). USD, cents.

    Stored as one JSON row of strings in this field order (``CostForecast.daily``); ``to_json``
    and ``from_json`` are the only code that knows the positions."""

    day: date
    mean: Decimal
    lo80: Decimal
    hi80: Decimal
    lo95: Decimal
    hi95: Decimal
    running_mean: Decimal
    running_lo80: Decimal
    running_hi80: Decimal

    def to_json(self) -> list[str]:
        return [str(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_json(cls, row: Sequence[str]) -> ForecastDay:
        day, *amounts = row
        return cls(date.fromisoformat(day), *(Decimal(amount) for amount in amounts))

    @classmethod
    def of(cls, day: date, cost: Interval, running: Interval) -> ForecastDay:
        return cls(
            day,
            cost.mean,
            cost.lo80,
            cost.hi80,
            cost.lo95,
            cost.hi95,
            running.mean,
            running.lo80,
            running.hi80,
        )


@dataclass(frozen=True)
class Crossing:
    """When cumulative spend is expected to pass a budget: the median day over the simulated
    paths and its 80% interval; ``probability`` that it happens within the horizon."""

    expected: date | None
    lo80: date | None
    hi80: date | None
    probability: float


def daily_series(values: dict[date, Decimal], start: date, end: date) -> pd.Series:
    """Daily values from ``start`` to ``end`` inclusive; days without cost are zero."""
    index = pd.date_range(start, end, freq="D")
    # money modelled as float, see top
    return pd.Series([float(values.get(day.date(), 0)) for day in index], index=index, dtype=float)


def _seasonal_naive_means(history: np.ndarray, horizon: int) -> np.ndarray:
    last = history[-SEASON:]
    return np.array([last[h % SEASON] for h in range(horizon)])


def _seasonal_naive_residuals(history: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return history[SEASON:] - history[:-SEASON]


def _fit(
    history: np.ndarray, method: str, horizon: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(means, paths) for ``horizon`` days after ``history``."""
    if not history.any():
        return np.zeros(horizon), np.zeros((horizon, PATHS))
    if method == "mean":
        recent = history[-SEASON * 2 :]
        means = np.full(horizon, recent.mean())
        deviations = recent - recent.mean()
        paths = means[:, None] + rng.choice(deviations, size=(horizon, PATHS))
    elif method == "seasonal_naive":
        means = _seasonal_naive_means(history, horizon)
        residuals = _seasonal_naive_residuals(history)
        # Errors of a seasonal-naive forecast grow with the number of seasons ahead.
        growth = np.sqrt(np.floor(np.arange(horizon) / SEASON) + 1)[:, None]
        paths = means[:, None] + growth * rng.choice(residuals, size=(horizon, PATHS))
    else:
        window = history[-FIT_WINDOW:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(
                window,
                trend="add",
                damped_trend=True,
                seasonal="add",
                seasonal_periods=SEASON,
                initialization_method="estimated",
            ).fit(use_brute=False)
            means = np.asarray(model.forecast(horizon))
            paths = np.asarray(
                model.simulate(
                    horizon, repetitions=PATHS, error="add", anchor="end", random_state=rng
                )
            )
    return np.maximum(means, 0.0), np.maximum(paths, 0.0)


@dataclass(frozen=True)
class Backtest:
    method: str
    mase: float
    smape: float
    coverage80: float
    coverage95: float


def backtest(
    history: pd.Series, method: str, *, origins: int = 3, horizon: int = 14, seed: int = 0
) -> Backtest | None:
    """Rolling-origin evaluation: forecast the ``horizon`` days after each of the last
    ``origins`` cut points; MASE is scaled by the in-sample seasonal-naive error."""
    values = history.to_numpy(dtype=float)
    origins = min(origins, (len(values) - MIN_FOR_MODEL) // horizon)  # every train >= 4 weeks
    if origins < 1:
        return None
    rng = np.random.default_rng(seed)
    errors, scales, smapes, inside80, inside95, count = [], [], [], 0, 0, 0
    for k in range(origins, 0, -1):
        cut = len(values) - k * horizon
        train, test = values[:cut], values[cut : cut + horizon]
        means, paths = _fit(train, method, len(test), rng)
        # A series that repeats itself exactly has no seasonal-naive error to scale by; its mean
        # level is used instead, so MASE stays finite.
        scale = float(
            np.mean(np.abs(_seasonal_naive_residuals(train))) or np.mean(np.abs(train)) or 1.0
        )
        errors.append(np.mean(np.abs(test - means)))
        scales.append(scale)
        denominator = np.abs(test) + np.abs(means)
        smapes.append(
            np.mean(
                np.where(
                    denominator > 0,
                    2 * np.abs(test - means) / np.where(denominator > 0, denominator, 1),
                    0,
                )
            )
        )
        lo80, hi80, lo95, hi95 = np.quantile(paths, [0.10, 0.90, 0.025, 0.975], axis=1)
        inside80 += int(np.sum((test >= lo80) & (test <= hi80)))
        inside95 += int(np.sum((test >= lo95) & (test <= hi95)))
        count += len(test)
    mase = float(np.mean(errors)) / float(np.mean(scales))
    return Backtest(method, mase, float(np.mean(smapes)), inside80 / count, inside95 / count)


def choose_method(history: pd.Series) -> tuple[str, dict[str, Backtest]]:
    """The method with the lowest backtest MASE (ties go to seasonal naive), and the backtests."""
    if len(history) < MIN_FOR_MODEL:
        return ("mean" if len(history) < SEASON * 2 else "seasonal_naive"), {}
    scored = {m: b for m in ("ets", "seasonal_naive") if (b := backtest(history, m)) is not None}
    if not scored:
        return "seasonal_naive", {}
    best = min(scored.values(), key=lambda b: (b.mase, b.method != "seasonal_naive"))
    return best.method, scored


def forecast(
    history: pd.Series, horizon: int, *, method: str | None = None, seed: int = 0
) -> Forecast:
    """Forecast ``horizon`` days after the last day of ``history`` (a daily series)."""
    if len(history) == 0:
        raise ValueError("no history to forecast from")
    chosen = method or choose_method(history)[0]
    means, paths = _fit(history.to_numpy(dtype=float), chosen, horizon, np.random.default_rng(seed))
    start = (history.index[-1] + pd.Timedelta(days=1)).date()
    return Forecast(chosen, start, means, paths)


def budget_crossing(
    result: Forecast, *, spent: Decimal, budget: Decimal, days: int | None = None
) -> Crossing:
    """When spend, ``spent`` so far plus forecast days, passes ``budget`` within ``days``."""
    days = min(days or result.horizon, result.horizon)
    remaining = float(budget - spent)  # money modelled as float, see top
    if remaining <= 0:
        return Crossing(result.start - timedelta(days=1), None, None, 1.0)
    cumulative = np.cumsum(result.paths[:days], axis=0)
    crossed = cumulative >= remaining
    hit = crossed.any(axis=0)
    probability = float(hit.mean())
    if probability < 0.5:
        return Crossing(None, None, None, probability)
    first = np.where(hit, crossed.argmax(axis=0), days)  # days = "not within the horizon"
    median, lo, hi = np.quantile(first, [0.5, 0.10, 0.90], method="lower")

    def on(offset: float) -> date | None:
        return None if offset >= days else result.start + timedelta(days=int(offset))

    return Crossing(on(median), on(lo), on(hi), probability)
