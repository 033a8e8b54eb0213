"""Percentiles of explicit-bucket histograms (OTLP's ``explicit_bounds`` and ``bucket_counts``).

A percentile is read by linear interpolation inside the bucket that holds its rank (as
Prometheus' ``histogram_quantile`` does), so it is a real value between the bucket's edges, not
the edge itself. Bucket ``i`` holds values in ``(bounds[i-1], bounds[i]]``; the first bucket starts
at the reported minimum (else 0 when its upper bound is positive), the last one (``+Inf``) ends at
the reported maximum (else the last finite bound). Pure: no Django, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Histogram:
    """Counts over explicit bounds (``len(counts) == len(bounds) + 1``), with the smallest and
    largest values seen when known."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    min: float | None = None
    max: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts)


def histogram_make(
    bounds: Sequence[float],
    counts: Sequence[int],
    *,
    min: float | None = None,
    max: float | None = None,
) -> Histogram:
    """A histogram, its counts padded or cut to ``len(bounds) + 1`` buckets."""
    size = len(bounds) + 1
    padded = (list(counts) + [0] * size)[:size]
    return Histogram(tuple(float(b) for b in bounds), tuple(int(c) for c in padded), min, max)


def histograms_merge(histograms: Iterable[Histogram]) -> Histogram | None:
    """The sum of histograms. Over different bounds, the union of the bounds: each source
    bucket's count goes to the union bucket that ends at the source bucket's upper edge (a
    percentile can then only be read too high, by at most the source bucket's width)."""
    parts = [h for h in histograms if h.total]
    if not parts:
        return None
    bounds = sorted({b for h in parts for b in h.bounds})
    index = {b: i for i, b in enumerate(bounds)}
    counts = [0] * (len(bounds) + 1)
    for part in parts:
        for i, count in enumerate(part.counts):
            target = index[part.bounds[i]] if i < len(part.bounds) else len(bounds)
            counts[target] += count
    lows = [h.min for h in parts if h.min is not None]
    highs = [h.max for h in parts if h.max is not None]
    return Histogram(
        tuple(bounds),
        tuple(counts),
        min(lows) if len(lows) == len(parts) else None,
        max(highs) if len(highs) == len(parts) else None,
    )


def _edges(histogram: Histogram, index: int) -> tuple[float, float]:
    bounds = histogram.bounds
    if not bounds:
        low = histogram.min if histogram.min is not None else 0.0
        high = histogram.max if histogram.max is not None else low
        return low, high
    if index == 0:
        if histogram.min is not None:
            low = min(histogram.min, bounds[0])
        else:
            low = 0.0 if bounds[0] > 0 else bounds[0]
        return low, bounds[0]
    if index >= len(bounds):
        high = histogram.max if histogram.max is not None else bounds[-1]
        return bounds[-1], max(high, bounds[-1])
    return bounds[index - 1], bounds[index]


def percentile(histogram: Histogram, q: float) -> float | None:
    """The ``q`` quantile (0 <= q <= 1) by linear interpolation inside its bucket; None when the
    histogram is empty. Clamped to the reported min and max when known."""
    if not 0 <= q <= 1:
        raise ValueError(f"A quantile is between 0 and 1, not {q}.")
    total = histogram.total
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram.counts):
        if count and seen + count >= rank:
            low, high = _edges(histogram, index)
            value = low + (high - low) * max(rank - seen, 0) / count
            if histogram.min is not None:
                value = max(value, histogram.min)
            if histogram.max is not None:
                value = min(value, histogram.max)
            return value
        seen += count
    return None  # unreachable: the last non-empty bucket reaches the total


def percentiles(histogram: Histogram, qs: Sequence[float]) -> dict[float, float | None]:
    return {q: percentile(histogram, q) for q in qs}
