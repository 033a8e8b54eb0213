"""Durations as log-spaced histograms, so percentiles can be read from rollups.

Bucket ``i`` holds durations in [2^(i/4), 2^((i+1)/4)) seconds (about 19% wide); bucket 0 also
holds everything under a second, the last bucket everything above 2^20 s (12 days). A percentile
read from a histogram is interpolated inside the bucket that holds it (geometrically, as the
buckets are log-spaced; linearly in bucket 0, which starts at 0), never a bucket's edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BUCKETS = 81


def bucket_of(duration_ms: int) -> int:
    seconds = duration_ms / 1000
    if seconds < 1:
        return 0
    return min(BUCKETS - 1, int(math.log2(seconds) * 4))


def bucket_upper_ms(index: int) -> int:
    return int(2 ** ((index + 1) / 4) * 1000)


def bucket_lower_ms(index: int) -> int:
    return 0 if index == 0 else int(2 ** (index / 4) * 1000)


def _first_ms_of(index: int) -> int:
    """The smallest whole millisecond ``bucket_of`` puts in bucket ``index`` or later."""
    low, high = 0, 2**41
    while low < high:
        middle = (low + high) // 2
        if bucket_of(middle) >= index:
            high = middle
        else:
            low = middle + 1
    return low


# Where each bucket after the first starts, exactly as ``bucket_of`` decides: SQL counts a
# duration's bucket with ``width_bucket(duration_ms, BUCKET_STARTS_MS)`` and agrees with Python.
BUCKET_STARTS_MS = tuple(_first_ms_of(i) for i in range(1, BUCKETS))


def histogram_add(histogram: Sequence[int], duration_ms: int, count: int = 1) -> list[int]:
    merged = list(histogram) + [0] * (BUCKETS - len(histogram))
    merged[bucket_of(duration_ms)] += count
    return merged


def histogram_merge(histograms: Sequence[Sequence[int]]) -> list[int]:
    merged = [0] * BUCKETS
    for histogram in histograms:
        for index, count in enumerate(histogram):
            merged[index] += count
    return merged


def percentile_ms(histogram: Sequence[int], q: float) -> int | None:
    """The ``q`` quantile (0 < q <= 1) in milliseconds, or None if the histogram is empty.

    The quantile's rank ``q * total`` falls in one bucket; the value is interpolated by where
    the rank falls among that bucket's counts (its durations taken as spread evenly on the
    bucket's log scale; linearly in bucket 0). ``q = 1`` gives the top bucket's upper edge."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            fraction = min(1.0, max(0.0, (rank - seen) / count))
            lower, upper = bucket_lower_ms(index), bucket_upper_ms(index)
            if lower == 0:
                return round(upper * fraction)
            return round(lower * math.pow(upper / lower, fraction))
        seen += count
    return bucket_upper_ms(len(histogram) - 1)
