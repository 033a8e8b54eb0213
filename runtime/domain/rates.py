"""Rates from counter increases, and how long a queue makes a new job wait. Pure.

Counters are stored as increases (see ``runtime.models.MetricPoint``), so a rate over a bucket is
the bucket's increase divided by its length; a queue's estimated wait is its depth divided by
its processing rate (Little's law for a queue served at that rate).
"""

from __future__ import annotations

from dataclasses import dataclass


def rate_per_second(increase: float | None, seconds: float) -> float | None:
    """The average rate of a counter that grew by ``increase`` over ``seconds``."""
    if increase is None:
        return None
    if seconds <= 0:
        raise ValueError("A rate needs a positive length of time.")
    return increase / seconds


def ratio(part: float, whole: float) -> float | None:
    """``part / whole`` (an error rate: errors per job), None when nothing happened."""
    if whole <= 0:
        return None if part <= 0 else 1.0
    return min(part / whole, 1.0)


@dataclass(frozen=True)
class QueueWait:
    """The wait a job joining the queue can expect: ``seconds`` (None when unknown or when the
    queue is stalled: jobs waiting and nothing processed)."""

    depth: float | None
    rate: float | None  # jobs per second
    seconds: float | None
    stalled: bool


def estimated_wait(depth: float | None, rate: float | None) -> QueueWait:
    """Depth / processing rate. No depth: unknown; an empty queue: no wait; jobs waiting with no
    processing reported: unknown; jobs waiting with a rate of zero: stalled."""
    if depth is None:
        return QueueWait(depth, rate, None, False)
    if depth <= 0:
        return QueueWait(depth, rate, 0.0, False)
    if rate is None:
        return QueueWait(depth, rate, None, False)
    if rate <= 0:
        return QueueWait(depth, rate, None, True)
    return QueueWait(depth, rate, depth / rate, False)
