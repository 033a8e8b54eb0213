"""Health rules: the status of a part of the factory (ok, degraded, down, unknown) from when it
last reported, its error rate and, for queues, the estimated wait. Pure; the thresholds come from
settings (``HEALTH_*``) through ``HealthThresholds``.

- unknown: never reported;
- down: silent for ``down_after`` or longer, an error rate at or above ``error_rate_down``, or a
  queue that is stalled (jobs waiting, nothing processed) or whose wait reaches ``wait_down``;
- degraded: silent for ``stale_after`` or longer, an error rate at or above
  ``error_rate_degraded``, or a wait at or above ``wait_degraded``;
- ok otherwise. The first rule that holds, in that order, gives the reason shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from runtime.domain.rates import QueueWait


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


SEVERITY = {Status.OK: 0, Status.UNKNOWN: 1, Status.DEGRADED: 2, Status.DOWN: 3}


@dataclass(frozen=True)
class HealthThresholds:
    stale_after: timedelta = timedelta(minutes=2)
    down_after: timedelta = timedelta(minutes=10)
    error_rate_degraded: float = 0.05
    error_rate_down: float = 0.5
    wait_degraded: timedelta = timedelta(minutes=5)
    wait_down: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.stale_after <= self.down_after:
            raise ValueError("Health: 0 < stale_after <= down_after is required.")
        if not 0 < self.error_rate_degraded <= self.error_rate_down <= 1:
            raise ValueError("Health: 0 < error_rate_degraded <= error_rate_down <= 1.")
        if not timedelta(0) < self.wait_degraded <= self.wait_down:
            raise ValueError("Health: 0 < wait_degraded <= wait_down is required.")


@dataclass(frozen=True)
class Indicator:
    key: str  # control_plane | data_plane | queues | database
    name: str
    status: Status
    reason: str
    last_reported: datetime | None


def elapsed_text(delta: timedelta) -> str:
    """How long, coarsely: "45 s", "12 min", "3 h", "2 days"."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def indicator_status(
    *,
    key: str,
    name: str,
    now: datetime,
    last_reported: datetime | None,
    thresholds: HealthThresholds,
    error_rate: float | None = None,
    wait: QueueWait | None = None,
) -> Indicator:
    """One indicator by the rules of this module's docstring."""

    def result(status: Status, reason: str) -> Indicator:
        return Indicator(key, name, status, reason, last_reported)

    if last_reported is None:
        return result(Status.UNKNOWN, "Nothing reported yet.")
    age = max(now - last_reported, timedelta(0))
    t = thresholds
    if age >= t.down_after:
        return result(
            Status.DOWN,
            f"Silent for {elapsed_text(age)} (down after {elapsed_text(t.down_after)}).",
        )
    if error_rate is not None and error_rate >= t.error_rate_down:
        return result(
            Status.DOWN, f"Error rate {error_rate:.0%} (down at {t.error_rate_down:.0%})."
        )
    if wait is not None and wait.stalled:
        return result(Status.DOWN, f"{wait.depth:g} jobs waiting and none processed.")
    if (
        wait is not None
        and wait.seconds is not None
        and wait.seconds >= t.wait_down.total_seconds()
    ):
        return result(
            Status.DOWN,
            f"Estimated wait {elapsed_text(timedelta(seconds=wait.seconds))}"
            f" (down at {elapsed_text(t.wait_down)}).",
        )
    if age >= t.stale_after:
        return result(
            Status.DEGRADED,
            f"Silent for {elapsed_text(age)} (degraded after {elapsed_text(t.stale_after)}).",
        )
    if error_rate is not None and error_rate >= t.error_rate_degraded:
        return result(
            Status.DEGRADED,
            f"Error rate {error_rate:.1%} (degraded at {t.error_rate_degraded:.0%}).",
        )
    if (
        wait is not None
        and wait.seconds is not None
        and wait.seconds >= t.wait_degraded.total_seconds()
    ):
        return result(
            Status.DEGRADED,
            f"Estimated wait {elapsed_text(timedelta(seconds=wait.seconds))}"
            f" (degraded at {elapsed_text(t.wait_degraded)}).",
        )
    return result(Status.OK, "Reporting normally.")


def overall(statuses: Iterable[Status]) -> Status:
    """The worst of the statuses (unknown only when nothing is known at all)."""
    listed = list(statuses)
    known = [s for s in listed if s is not Status.UNKNOWN]
    if not known:
        return Status.UNKNOWN
    return max(known, key=SEVERITY.__getitem__)
