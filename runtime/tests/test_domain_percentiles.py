"""Histogram percentiles: linear interpolation inside explicit buckets, checked against numpy."""

from __future__ import annotations

import bisect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.domain.percentiles import histogram_make, histograms_merge, percentile

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10]


def bucketed(samples: list[float], bounds: list[float]):  # type: ignore[no-untyped-def]
    counts = [0] * (len(bounds) + 1)
    for value in samples:
        counts[bisect.bisect_left(bounds, value)] += 1  # (low, high]: a value on a bound is in it
    return histogram_make(bounds, counts, min=min(samples), max=max(samples))


def test_interpolates_inside_the_bucket_not_its_edge() -> None:
    # 10 values in (0, 1], 10 in (1, 2]: the median is the end of the first bucket, p75 halfway
    # through the second.
    histogram = histogram_make([1, 2], [10, 10, 0])
    assert percentile(histogram, 0.5) == pytest.approx(1.0)
    assert percentile(histogram, 0.75) == pytest.approx(1.5)
    assert percentile(histogram, 0.55) == pytest.approx(1.1)


def test_first_bucket_starts_at_zero_or_min_and_last_ends_at_max() -> None:
    assert percentile(histogram_make([10], [4, 0]), 0.5) == pytest.approx(5.0)
    assert percentile(histogram_make([10], [4, 0], min=6), 0.5) == pytest.approx(8.0)
    assert percentile(histogram_make([10], [0, 4], max=30), 0.5) == pytest.approx(20.0)
    # No max reported: the +Inf bucket is read as its finite lower edge.
    assert percentile(histogram_make([10], [0, 4]), 0.99) == pytest.approx(10.0)


def test_empty_and_invalid() -> None:
    assert percentile(histogram_make(BOUNDS, []), 0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile(histogram_make([1], [1, 0]), 1.5)


def test_merge_sums_same_bounds_and_unions_different_ones() -> None:
    a = histogram_make([1, 2], [1, 2, 3], min=0.5, max=9)
    b = histogram_make([1, 2], [4, 0, 1], min=0.1, max=3)
    merged = histograms_merge([a, b])
    assert merged is not None
    assert merged.counts == (5, 2, 4)
    assert (merged.min, merged.max) == (0.1, 9)
    other = histograms_merge([a, histogram_make([1.5], [2, 2])])
    assert other is not None
    assert other.bounds == (1.0, 1.5, 2.0)
    assert other.counts == (1, 2, 2, 5)  # (1, 1.5] of the second goes to the bucket ending 1.5
    assert histograms_merge([histogram_make([1], [])]) is None


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(
        st.floats(min_value=0.0001, max_value=20, allow_nan=False), min_size=1, max_size=400
    ),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_percentile_lies_in_the_bucket_of_the_true_percentile(
    samples: list[float], q: float
) -> None:
    histogram = bucketed(samples, BOUNDS)
    estimate = percentile(histogram, q)
    truth = float(np.quantile(samples, q, method="inverted_cdf"))
    index = bisect.bisect_left(BOUNDS, truth)
    low = BOUNDS[index - 1] if index else min(samples)
    high = BOUNDS[index] if index < len(BOUNDS) else max(samples)
    assert estimate is not None
    assert min(low, histogram.min or 0) - 1e-9 <= estimate <= high + 1e-9
    assert min(samples) - 1e-9 <= estimate <= max(samples) + 1e-9


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), q=st.sampled_from([0.5, 0.95, 0.99]))
def test_close_to_numpy_on_uniform_samples_with_fine_buckets(seed: int, q: float) -> None:
    samples = np.random.default_rng(seed).uniform(0, 100, 5000).tolist()
    bounds = [float(b) for b in range(1, 100)]
    estimate = percentile(bucketed(samples, bounds), q)
    assert estimate is not None
    # Within the bucket's width of numpy's (interpolated) percentile: a real value, not an edge.
    assert abs(estimate - float(np.quantile(samples, q))) <= 1.0
