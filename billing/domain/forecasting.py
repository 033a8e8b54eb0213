"""Forecasting daily cost with prediction intervals (pure: pandas in, dataclasses out).

Candidates (``CANDIDATES``): seasonal naive (the same weekday last week); a robust weekday
profile (the median share of each weekday in its week over the last eight weeks, times the mean
level of the last two weeks); ETS with additive weekly seasonality (statsforecast, on the last
26 weeks); and the mean of the two best of the last two. The method is chosen per series by a
rolling-origin backtest (three origins, 28 days each once there are 20 weeks of history):
lowest mean absolute error wins, ties go to the simpler method. Theta and MSTL were candidates
once; on the benchmark's real series they rarely won and took most of the time.

Public holidays of the tenant's country (``holidays``; the country comes from the tenant's time
zone) are taken out before any model sees the history: a holiday and the days either side of it
become the mean of the same weekday a week before and after, and each one's effect is the
median ratio of what happened to that. Forecasts put the effects back on the coming holidays.

Intervals are conformal: the chosen method's errors at eight origins 14 days apart (relative to
the level before each origin, times today's level), widened until intervals made from all
origins but one cover 80% and 95% of the left-out origin's days (a few origins understate how
far a stretch can differ from the others). They are resampled as whole 28-day stretches onto
the forecast, widening with the square root of the horizon past 28 days. Intervals, month
totals and the day a budget is crossed all come from those simulated future paths (500), so the
interval of a sum keeps the errors' persistence and is not the sum of intervals.

Costs are modelled as floats inside the statistical model, since a forecast is an estimate, not
booked money; results are returned as Decimal rounded to the cent.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from factory_portal.money import cents_from_float

SEASON = 7
PATHS = 500
MIN_FOR_MODEL = 28  # days before any model is fitted (shorter: recent mean or seasonal naive)
FIT_WINDOW = 182  # days ETS is fitted on
BACKTEST_ORIGINS = 3
BACKTEST_HORIZON = 28
PROFILE_WEEKS = 8
CALIBRATION_ORIGINS = 8
CALIBRATION_STEP = 14
WIDENINGS = tuple(1 + 0.1 * k for k in range(16))
CANDIDATES = ("seasonal_naive", "weekday", "ets")
# What a tenant reads for a method (a combination ``a+b`` reads "mean of a and b").
METHOD_LABELS = {
    "seasonal_naive": "same weekday last week",
    "weekday": "weekday profile",
    "ets": "exponential smoothing",
    "mean": "recent mean",
}


def method_label(method: str) -> str:
    """``ets`` -> "exponential smoothing"; ``weekday+ets`` -> "mean of weekday profile and
    exponential smoothing"."""
    names = [METHOD_LABELS.get(part, part.replace("_", " ")) for part in method.split("+")]
    return names[0] if len(names) == 1 else f"mean of {' and '.join(names)}"


# Ties are broken towards the front of this order (the simpler method).
SIMPLICITY = {name: rank for rank, name in enumerate(CANDIDATES)}

Array = npt.NDArray[np.float64]


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


def _seasonal_naive(history: Array, horizon: int) -> Array:
    last = history[-SEASON:]
    return np.array([last[h % SEASON] for h in range(horizon)], dtype=float)


def _weekday(history: Array, horizon: int) -> Array:
    """Median share of each weekday in its week (or median difference from the week's mean when
    a week has no cost) over the last ``PROFILE_WEEKS`` whole weeks, times the level of the last
    two weeks. Robust to a single odd day, unlike seasonal naive."""
    weeks_count = min(PROFILE_WEEKS, len(history) // SEASON)
    weeks = history[len(history) - weeks_count * SEASON :].reshape(weeks_count, SEASON)
    week_means = weeks.mean(axis=1)
    level = float(week_means[-2:].mean())
    if (week_means > 0).all():
        profile = np.median(weeks / week_means[:, None], axis=0)
        pattern = level * profile / profile.mean()
    else:
        pattern = level + np.median(weeks - week_means[:, None], axis=0)
    return np.array([pattern[h % SEASON] for h in range(horizon)], dtype=float)


def _statsforecast(model: object, history: Array, horizon: int) -> Array:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.forecast(y=history, h=horizon)  # type: ignore[attr-defined]
        return np.asarray(result["mean"], dtype=np.float64)


def _ets(history: Array, horizon: int) -> Array:
    from statsforecast.models import AutoETS

    model = AutoETS(season_length=SEASON, model="ANA")
    return _statsforecast(model, history[-FIT_WINDOW:], horizon)


_MODELS: dict[str, Callable[[Array, int], Array]] = {
    "seasonal_naive": _seasonal_naive,
    "weekday": _weekday,
    "ets": _ets,
}


# Holidays: a day is keyed by the public holiday it is, or is the day before or after.
HolidayKey = tuple[str, int]


@lru_cache(maxsize=256)
def _holidays_of(country: str, year: int) -> dict[date, str]:
    import holidays

    try:
        found = holidays.country_holidays(country, years=year)
    except NotImplementedError:  # a country the library does not know
        return {}
    # An observed day off is the holiday itself for whoever spends the money.
    return {day: name.replace(" (observed)", "") for day, name in found.items()}


def holiday_keys(country: str | None, start: date, days: int) -> list[HolidayKey | None]:
    """For each of ``days`` days from ``start``: (holiday name, 0) on a public holiday of
    ``country`` (ISO code), (name, -1) the day before and (name, 1) the day after one; None on
    other days and when the country is unknown."""
    if not country:
        return [None] * days
    end = start + timedelta(days=days)
    names: dict[date, str] = {}
    for year in range(start.year, end.year + 1):
        names.update(_holidays_of(country, year))
    keys: list[HolidayKey | None] = []
    one = timedelta(days=1)
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day in names:
            keys.append((names[day], 0))
        elif day - one in names:
            keys.append((names[day - one], 1))
        elif day + one in names:
            keys.append((names[day + one], -1))
        else:
            keys.append(None)
    return keys


@dataclass(frozen=True)
class HolidayEffects:
    """The history with holiday days replaced by what a normal day would have been (the mean of
    the same weekday a week before and after), and each holiday key's effect: the median ratio
    of the actual day to that normal day over the history."""

    adjusted: Array
    factors: dict[HolidayKey, float]

    def apply(self, means: Array, keys: Sequence[HolidayKey | None]) -> Array:
        """``means`` of normal days scaled on the holidays among ``keys`` (one per day). A
        holiday not seen in the history takes the median effect of the holidays that were."""
        if not any(keys):
            return means
        seen = [f for (_, offset), f in self.factors.items() if offset == 0]
        unseen = float(np.median(seen)) if seen else 1.0
        scale = np.ones(len(means))
        for i, key in enumerate(keys[: len(means)]):
            if key is not None:
                scale[i] = self.factors.get(key, unseen if key[1] == 0 else 1.0)
        return means * scale


def holiday_effects(values: Array, keys: Sequence[HolidayKey | None]) -> HolidayEffects:
    """Estimate holiday effects on ``values`` (one key per value, from ``holiday_keys``)."""
    marked = [i for i, key in enumerate(keys[: len(values)]) if key is not None]
    if not marked:
        return HolidayEffects(values, {})
    adjusted = values.copy()
    holiday = np.zeros(len(values), dtype=bool)
    holiday[marked] = True
    ratios: dict[HolidayKey, list[float]] = {}
    for i in marked:
        key = keys[i]
        near = [
            values[j]
            for j in (i - SEASON, i + SEASON, i - 2 * SEASON, i + 2 * SEASON)
            if 0 <= j < len(values) and not holiday[j]
        ][:2]
        if not near:
            continue
        normal = float(np.mean(near))
        adjusted[i] = normal
        if normal > 0 and key is not None:
            ratios.setdefault(key, []).append(values[i] / normal)
    factors = {key: float(np.clip(np.median(r), 0.0, 3.0)) for key, r in ratios.items()}
    return HolidayEffects(adjusted, factors)


def _base(adjusted: Array, method: str, horizon: int) -> Array | None:
    """Mean forecast of ``method`` (a candidate or ``a+b``, the mean of two) on a history
    without holiday effects, or None when the model cannot be fitted to it."""
    try:
        means = [_MODELS[part](adjusted, horizon) for part in method.split("+")]
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    combined = np.mean(means, axis=0)
    return combined if np.isfinite(combined).all() else None


def _point(
    history: Array, method: str, horizon: int, keys: Sequence[HolidayKey | None] = ()
) -> Array | None:
    """Mean forecast of ``method`` with holiday effects; ``keys`` covers history and horizon
    (empty: no holidays)."""
    if not keys:
        return _base(history, method, horizon)
    effects = holiday_effects(history, keys[: len(history)])
    base = _base(effects.adjusted, method, horizon)
    return None if base is None else effects.apply(base, keys[len(history) :])


@dataclass(frozen=True)
class Backtest:
    """Rolling-origin errors of one method: ``errors`` is origins x horizon (truth - forecast).
    Coverage is out of sample: each origin's interval comes from the other origins' errors."""

    method: str
    mae: float
    mase: float
    smape: float
    coverage80: float
    coverage95: float
    errors: Array = field(repr=False)


def _backtest_shape(length: int) -> tuple[int, int]:
    """(origins, horizon) for a history of ``length`` days; every training part keeps at least
    ``MIN_FOR_MODEL`` days."""
    horizon = BACKTEST_HORIZON if length >= MIN_FOR_MODEL + 4 * BACKTEST_HORIZON else 14
    return min(BACKTEST_ORIGINS, (length - MIN_FOR_MODEL) // horizon), horizon


def _score(method: str, truths: Array, forecasts: Array, scale: float) -> Backtest:
    errors = truths - forecasts
    denominator = np.abs(truths) + np.abs(forecasts)
    smape = np.where(
        denominator > 0, 2 * np.abs(errors) / np.where(denominator > 0, denominator, 1), 0
    )
    inside80 = inside95 = 0
    origins = len(errors)
    for k in range(origins):
        others = np.delete(errors, k, axis=0).ravel() if origins > 1 else errors.ravel()
        lo95, lo80, hi80, hi95 = np.quantile(others, [0.025, 0.10, 0.90, 0.975])
        inside80 += int(np.sum((errors[k] >= lo80) & (errors[k] <= hi80)))
        inside95 += int(np.sum((errors[k] >= lo95) & (errors[k] <= hi95)))
    mae = float(np.mean(np.abs(errors)))
    return Backtest(
        method,
        mae,
        mae / scale,
        float(np.mean(smape)),
        inside80 / errors.size,
        inside95 / errors.size,
        errors,
    )


def _keys(history: pd.Series, country: str | None, horizon: int) -> list[HolidayKey | None]:
    if not country or len(history) == 0:
        return []
    return holiday_keys(country, history.index[0].date(), len(history) + horizon)


def backtests(
    history: pd.Series,
    *,
    candidates: Sequence[str] = CANDIDATES,
    country: str | None = None,
) -> dict[str, Backtest]:
    """Rolling-origin evaluation of every candidate and of the mean of the two best (other than
    seasonal naive), on the last ``BACKTEST_ORIGINS`` stretches of history, with the holidays of
    ``country`` estimated on each training part. MASE is scaled by the in-sample seasonal-naive
    error. Empty when the history is too short."""
    values = history.to_numpy(dtype=float)
    origins, horizon = _backtest_shape(len(values))
    if origins < 1:
        return {}
    keys = _keys(history, country, 0)
    cuts = [len(values) - k * horizon for k in range(origins, 0, -1)]
    truths = np.array([values[cut : cut + horizon] for cut in cuts])
    forecasts: dict[str, list[Array | None]] = {method: [] for method in candidates}
    for cut in cuts:
        effects = holiday_effects(values[:cut], keys[:cut])
        for method in candidates:
            base = _base(effects.adjusted, method, horizon)
            rows = forecasts[method]
            rows.append(None if base is None else effects.apply(base, keys[cut : cut + horizon]))
    fitted = {
        method: np.maximum(np.array(rows, dtype=float), 0.0)
        for method, rows in forecasts.items()
        if all(row is not None for row in rows)
    }
    train = values[: cuts[0]]
    # A series that repeats itself exactly has no seasonal-naive error to scale by; its mean
    # level is used instead, so MASE stays finite.
    scale = float(
        np.mean(np.abs(train[SEASON:] - train[:-SEASON])) or np.mean(np.abs(train)) or 1.0
    )
    scored = {m: _score(m, truths, f, scale) for m, f in fitted.items()}
    models = sorted((b for m, b in scored.items() if m != "seasonal_naive"), key=_rank)
    if len(models) >= 2:
        first, second = models[0].method, models[1].method
        pair = "+".join(sorted((first, second), key=SIMPLICITY.__getitem__))
        scored[pair] = _score(pair, truths, (fitted[first] + fitted[second]) / 2, scale)
    return scored


def _rank(result: Backtest) -> tuple[float, int]:
    return (
        round(result.mae, 9),
        sum(SIMPLICITY[part] for part in result.method.split("+")) + 10 * result.method.count("+"),
    )


def backtest(history: pd.Series, method: str, *, country: str | None = None) -> Backtest | None:
    """The rolling-origin backtest of one method (a candidate or an ``a+b`` combination)."""
    parts = method.split("+")
    found = backtests(history, candidates=parts, country=country)
    if len(parts) == 1:
        return found.get(method)
    return found.get("+".join(sorted(parts, key=SIMPLICITY.__getitem__)))


def choose_method(
    history: pd.Series, *, candidates: Sequence[str] = CANDIDATES, country: str | None = None
) -> tuple[str, dict[str, Backtest]]:
    """The method with the lowest backtest MAE (ties go to the simpler one), and the
    backtests."""
    if len(history) < MIN_FOR_MODEL:
        return ("mean" if len(history) < SEASON * 2 else "seasonal_naive"), {}
    scored = backtests(history, candidates=candidates, country=country)
    if not scored:
        return "seasonal_naive", {}
    return min(scored.values(), key=_rank).method, scored


def calibration_errors(
    values: Array, method: str, keys: Sequence[HolidayKey | None], selection: Array
) -> Array:
    """Out-of-sample errors of ``method`` (origins x horizon, relative to the level of the
    last four weeks before each origin, times today's) from ``CALIBRATION_ORIGINS`` origins
    ``CALIBRATION_STEP`` days apart; the selection backtest's ``selection`` errors when the
    history is too short for them."""
    span = selection.shape[1]
    cuts = [
        len(values) - span - CALIBRATION_STEP * j
        for j in range(CALIBRATION_ORIGINS)
        if len(values) - span - CALIBRATION_STEP * j >= max(MIN_FOR_MODEL, 4 * SEASON)
    ]
    if len(cuts) <= len(selection):
        return selection
    level = float(np.mean(np.abs(values[-4 * SEASON :])))
    # The selection backtest's origins are every ``span`` days back from the end: reused.
    known = {len(values) - span * (len(selection) - k): row for k, row in enumerate(selection)}
    rows = []
    for cut in cuts:
        part = values[:cut]
        if cut in known:
            error = known[cut]
        else:
            effects = holiday_effects(part, keys[:cut])
            base = _base(effects.adjusted, method, span)
            if base is None:
                continue
            forecast_ = np.maximum(effects.apply(base, keys[cut : cut + span]), 0.0)
            error = values[cut : cut + span] - forecast_
        then = float(np.mean(np.abs(part[-4 * SEASON :])))
        rows.append(error * (level / then if then > 0 else 1.0))
    if len(rows) <= len(selection):
        return selection
    errors = np.array(rows, dtype=float)
    return errors * _widening(errors)


def _widening(errors: Array) -> float:
    """The smallest factor on ``errors`` by which the 80% and the 95% intervals from all origins
    but one cover at least 80% and 95% of the left-out origin's days, on average over the
    origins: a few origins understate how far one stretch can differ from the others."""
    others = [np.delete(errors, k, axis=0).ravel() for k in range(len(errors))]
    bounds = np.array([np.quantile(o, [0.025, 0.10, 0.90, 0.975]) for o in others])
    for factor in WIDENINGS:
        low, high = factor * bounds[:, :2, None], factor * bounds[:, :1:-1, None]
        inside = (errors[:, None, :] >= low) & (errors[:, None, :] <= high)
        covered = inside.mean(axis=(0, 2))  # 95%, 80%
        if covered[0] >= 0.95 and covered[1] >= 0.80:
            return factor
    return WIDENINGS[-1]


def _paths(means: Array, errors: Array, rng: np.random.Generator) -> Array:
    """Future paths: means plus backtest error stretches (days x paths). Each path takes one
    origin's errors from a random day on (wrapping round), so a stretch of under-forecast days
    stays together; past the backtest horizon errors grow with the square root of the lead."""
    origins, span = errors.shape
    horizon = len(means)
    which = rng.integers(0, origins, PATHS)
    shift = rng.integers(0, span, PATHS)
    lead = np.arange(horizon)
    drawn = errors[which[None, :], (lead[:, None] + shift[None, :]) % span]
    growth = np.sqrt(np.maximum(1.0, (lead + 1) / span))[:, None]
    return np.asarray(means[:, None] + growth * drawn, dtype=np.float64)


def _fallback_paths(history: Array, method: str, horizon: int, rng: np.random.Generator) -> Array:
    """Paths for histories too short to backtest: recent deviations (``mean``) or week-on-week
    differences (``seasonal_naive``), resampled day by day."""
    if method == "mean":
        recent = history[-SEASON * 2 :]
        deviations = rng.choice(recent - recent.mean(), size=(horizon, PATHS))
        return np.asarray(recent.mean() + deviations, dtype=np.float64)
    means = _seasonal_naive(history, horizon)
    residuals = history[SEASON:] - history[:-SEASON]
    # Errors of a seasonal-naive forecast grow with the number of seasons ahead.
    growth = np.sqrt(np.floor(np.arange(horizon) / SEASON) + 1)[:, None]
    return np.asarray(
        means[:, None] + growth * rng.choice(residuals, size=(horizon, PATHS)), dtype=np.float64
    )


def forecast(
    history: pd.Series,
    horizon: int,
    *,
    method: str | None = None,
    scored: dict[str, Backtest] | None = None,
    country: str | None = None,
    seed: int = 0,
) -> Forecast:
    """Forecast ``horizon`` days after the last day of ``history`` (a daily series). Pass the
    ``method`` and backtests ``scored`` from ``choose_method`` to avoid backtesting twice."""
    if len(history) == 0:
        raise ValueError("no history to forecast from")
    if method is None:
        method, scored = choose_method(history, country=country)
    elif scored is None:
        parts = method.split("+")
        known = set(parts) <= set(_MODELS)
        scored = backtests(history, candidates=parts, country=country) if known else {}
    values = history.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    start = (history.index[-1] + pd.Timedelta(days=1)).date()
    if not values.any():
        return Forecast(method, start, np.zeros(horizon), np.zeros((horizon, PATHS)))
    result = scored.get(method)
    keys = _keys(history, country, horizon)
    means = _point(values, method, horizon, keys) if result is not None else None
    if result is None or means is None:
        method = "mean" if len(values) < SEASON * 2 else "seasonal_naive"
        means = (
            np.full(horizon, values[-SEASON * 2 :].mean())
            if method == "mean"
            else _seasonal_naive(values, horizon)
        )
        paths = _fallback_paths(values, method, horizon, rng)
    else:
        errors = calibration_errors(values, method, keys[: len(values)], result.errors)
        paths = _paths(means, errors, rng)
    return Forecast(method, start, np.maximum(means, 0.0), np.maximum(paths, 0.0))


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


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    from importlib.resources import files

    table = files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return {row[2]: row[0] for row in rows if len(row) >= 3}


def country_of_timezone(name: str) -> str | None:
    """The ISO country code of an IANA time zone (``Europe/Berlin`` -> ``DE``), whose public
    holidays a tenant's cost follows; None for ``UTC`` and zones of no single country."""
    return _zone_countries().get(name)
