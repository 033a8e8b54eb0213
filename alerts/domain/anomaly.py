"""Cost anomaly detection (pure): the last hour's AI cost against the trailing average of the
same hour of the week, so the normal weekly rhythm (quiet nights and weekends) is not an
anomaly but a Tuesday-afternoon spike is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    cost: Decimal
    baseline: Decimal | None  # mean of the same hour of week in the trailing weeks
    ratio: Decimal | None


def hour_verdict(
    cost: Decimal,
    history: Sequence[Decimal],
    *,
    factor: Decimal,
    min_cost: Decimal,
    min_history: int = 2,
) -> Verdict:
    """``history``: the cost of the same hour of week in each trailing week (zeros included).
    Anomalous when ``cost`` reaches ``min_cost`` and exceeds ``factor`` times the trailing
    mean; with less than ``min_history`` weeks of history nothing is anomalous (no baseline)."""
    if len(history) < min_history:
        return Verdict(False, cost, None, None)
    baseline = sum(history, Decimal(0)) / len(history)
    if baseline == 0:
        return Verdict(cost >= min_cost, cost, baseline, None)
    ratio = cost / baseline
    return Verdict(cost >= min_cost and ratio > factor, cost, baseline, ratio)
