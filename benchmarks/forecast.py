"""Forecasts for 1,000 synthetic daily series of two years (trend, weekly seasonality, noise,
zero days, level shifts): method choice by backtest, then a 90-day forecast with intervals.
Prints seconds and mean MASE against the seasonal-naive baseline, plus interval coverage.

Usage: .venv/bin/python benchmarks/forecast.py [--series 1000] [--days 730] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# One BLAS thread per process: the models are small, and several threads per worker on two
# cores only fight each other.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402 - after the thread settings above
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.domain.forecasting import choose_method, forecast  # noqa: E402

WEEKLY = np.array([1.0, 1.1, 1.05, 1.0, 0.95, 0.4, 0.3])


def series(seed: int, days: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    level = rng.uniform(5, 500)
    trend = rng.normal(0, level / 1000)
    shift = np.where(t > rng.integers(days // 2, days), rng.uniform(0.6, 1.6), 1.0)
    noise = rng.uniform(0.02, 0.3) * level
    values = (level + trend * t) * shift * WEEKLY[t % 7] + rng.normal(0, noise, days)
    values[rng.random(days) < rng.uniform(0, 0.05)] = 0.0  # days without any run
    return pd.Series(np.maximum(values, 0), index=pd.date_range("2024-11-01", periods=days))


def one(seed: int, days: int) -> tuple[float, float, float, float]:
    history = series(seed, days)
    method, backtests = choose_method(history)
    forecast(history, 90, method=method)
    chosen, naive = backtests[method], backtests["seasonal_naive"]
    return chosen.mase, naive.mase, chosen.coverage80, chosen.coverage95


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with ProcessPoolExecutor(args.processes) as pool:
        results = list(pool.map(one, range(args.series), [args.days] * args.series, chunksize=20))
    seconds = time.perf_counter() - started
    chosen, naive, cover80, cover95 = (np.array(column) for column in zip(*results, strict=True))
    print(f"series {args.series}")
    print(f"days_per_series {args.days}")
    print(f"seconds {seconds:.1f}")
    print(f"mean_mase_chosen {chosen.mean():.3f}")
    print(f"mean_mase_seasonal_naive {naive.mean():.3f}")
    print(f"mase_ratio_chosen_to_seasonal_naive {chosen.mean() / naive.mean():.3f}")
    print(f"coverage_80 {cover80.mean():.3f}")
    print(f"coverage_95 {cover95.mean():.3f}")


if __name__ == "__main__":
    main()
