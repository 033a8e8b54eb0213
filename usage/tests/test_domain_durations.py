"""Duration histograms: buckets, and percentiles interpolated inside a bucket (not its edge)."""

from __future__ import annotations

import math

import pytest

from usage.domain.durations import (
    BUCKET_STARTS_MS,
    BUCKETS,
    bucket_lower_ms,
    bucket_of,
    bucket_upper_ms,
    histogram_add,
    percentile_ms,
)


def _histogram(*durations_ms: int) -> list[int]:
    histogram = [0] * BUCKETS
    for ms in durations_ms:
        histogram = histogram_add(histogram, ms)
    return histogram


def test_empty_histogram_has_no_percentile() -> None:
    assert percentile_ms([0] * BUCKETS, 0.5) is None
    assert percentile_ms([], 0.95) is None


def test_percentile_is_interpolated_inside_the_bucket_not_its_upper_edge() -> None:
    # 100 durations in one bucket [2^(8/4), 2^(9/4)) s = [4000, 4756] ms.
    index = bucket_of(4100)
    histogram = _histogram(*[4100] * 100)
    lower, upper = bucket_lower_ms(index), bucket_upper_ms(index)
    p50 = percentile_ms(histogram, 0.5)
    assert p50 == round(math.sqrt(lower * upper))  # half-way on the bucket's log scale
    assert lower < p50 < upper
    assert percentile_ms(histogram, 0.95) < upper
    assert percentile_ms(histogram, 1.0) == upper


def test_percentiles_rise_with_q_and_stay_within_the_data_buckets() -> None:
    durations = [200, 900, 1500, 3000, 4000, 8000, 30_000, 60_000, 61_000, 600_000]
    histogram = _histogram(*durations)
    values = [percentile_ms(histogram, q / 20) for q in range(1, 21)]
    assert values == sorted(values)
    # The median of ten is between the 5th and 6th durations' buckets.
    p50 = percentile_ms(histogram, 0.5)
    assert bucket_lower_ms(bucket_of(4000)) <= p50 <= bucket_upper_ms(bucket_of(4000))


def test_bucket_zero_interpolates_linearly_from_zero() -> None:
    histogram = _histogram(*[500] * 4)
    assert percentile_ms(histogram, 0.5) == round(bucket_upper_ms(0) / 2)


@pytest.mark.parametrize("ms", [0, 999, 1000, 1189, 1190, 1191, 4756, 60_000, 10**12])
def test_bucket_starts_agree_with_bucket_of(ms: int) -> None:
    # What SQL's width_bucket(ms, BUCKET_STARTS_MS) answers is bucket_of's bucket.
    assert sum(1 for start in BUCKET_STARTS_MS if ms >= start) == bucket_of(ms)
