"""Run durations as log-spaced histograms, so percentiles can be read from rollups.

Bucket ``i`` holds durations in [2^(i/4), 2^((i+1)/4)) seconds (about 19% wide); bucket 0 also
holds everything under a second, the last bucket everything above 2^20 s (12 days).
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
    """The upper bound of the bucket holding the ``q`` quantile (0 < q <= 1), or None if empty."""
    total = sum(histogram)
    if not total:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return bucket_upper_ms(index)
    return bucket_upper_ms(len(histogram) - 1)
