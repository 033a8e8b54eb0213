"""Judging a rule's figures: whether its condition holds, its value, and the summary an on-call
person reads ("Queue build: 1,240 jobs waiting on average over the last 1 min (threshold
1,000)"). Pure: the figures come from ``services.conditions``, which reads them; nothing here
reads or stores.

Every rule's value grows with the trouble (a rate, a depth, a cost ratio, seconds of silence), so
an incident's peak is its largest value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from alerts.oncall.domain.rules import Rule, duration_text
from factory_portal.money import usd
from runtime.domain.health import elapsed_text

SUMMARY_MAX = 300  # Incident.summary's length


@dataclass(frozen=True)
class Sample:
    """One label set of a rule at one moment (``value`` None: no ratio to a zero baseline)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    active: bool = False
    summary: str = ""


def number_text(value: float | Decimal) -> str:
    """1240.0 → "1,240", 7.25 → "7.25", 7.256 → "7.26", 5.004 → "5.00" (never "5", which would
    read as not above a threshold of 5), Decimal("5") → "5". Halves round up."""
    exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if exact == exact.to_integral_value():
        return f"{int(exact):,}"
    rounded = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{rounded:,}"
    return text if rounded == rounded.to_integral_value() else text.rstrip("0")


def measure_text(value: float | Decimal, unit: str) -> str:
    """A figure with its rule's unit: "7.5%", "1,240 jobs", "2.5 times", "120 s"."""
    glued = unit.startswith(" ") or unit == "%"
    return f"{number_text(value)}{'' if glued else ' '}{unit}"


def threshold_text(rule: Rule) -> str:
    return f"threshold {measure_text(rule.threshold, rule.unit)}"


def _sample(labels: Mapping[str, str], value: float | None, active: bool, text: str) -> Sample:
    return Sample(dict(labels), value, active, text[:SUMMARY_MAX])


def _rate(rule: Rule, *, part: float, whole: float, minimum: int, what: str) -> Sample | None:
    """``part`` as a percentage of ``whole``; no sample below ``minimum`` (too few to mean
    anything)."""
    if whole < max(minimum, 1):
        return None
    rate = 100.0 * part / whole
    text = (
        f"{what} in the last {duration_text(rule.window_s)} ({number_text(rate)}%, "
        f"{threshold_text(rule)})"
    )
    return _sample({}, rate, rate > float(rule.threshold), text)


def failure_rate(rule: Rule, *, failed: float, finished: float, min_runs: int) -> Sample | None:
    """Failed runs as a percentage of runs that succeeded or failed in the window (cancelled
    runs are neither), from ``min_runs`` finished runs."""
    what = f"{number_text(failed)} of {number_text(finished)} finished runs failed"
    return _rate(rule, part=failed, whole=finished, minimum=min_runs, what=what)


def queue_depth(rule: Rule, *, queue: str, average: float) -> Sample:
    text = (
        f"Queue {queue}: {number_text(round(average))} jobs waiting on average over the last "
        f"{duration_text(rule.window_s)} ({threshold_text(rule)})"
    )
    return _sample({"queue_name": queue}, average, average > float(rule.threshold), text)


def worker_error_rate(rule: Rule, *, errors: float, jobs: float, min_jobs: int) -> Sample | None:
    """Worker errors per job finished, as a percentage (as the health page's data plane reads
    it), from ``min_jobs`` jobs."""
    what = f"{number_text(errors)} worker errors for {number_text(jobs)} jobs finished"
    return _rate(rule, part=errors, whole=jobs, minimum=min_jobs, what=what)


def ai_cost(
    rule: Rule, *, cost: Decimal, usual: Decimal, window_s: int, min_cost: Decimal
) -> Sample:
    """The AI cost of the last window (USD) against ``usual``, the average cost per window of
    the day before. Active when the cost reaches ``min_cost`` and is more than the threshold
    times the usual (any cost is, above a usual of nothing). Exact: Decimals throughout; the
    amounts are shown rounded to the cent."""
    span = duration_text(window_s)
    enough = cost >= min_cost and cost > 0
    if usual > 0:
        ratio = cost / usual
        active = enough and ratio > rule.threshold
        compared = f"{number_text(ratio)} times the usual {usd(usual)} per {span} of the day before"
        value: float | None = float(ratio)
    else:
        active = enough
        compared = "up from nothing the day before"
        value = None
    text = (
        f"AI cost {usd(cost)} in the last {span}, {compared} "
        f"({threshold_text(rule)}, at least {usd(min_cost)})"
    )
    return _sample({}, value, active, text)


def control_plane(rule: Rule, *, silent_s: float) -> Sample:
    """Seconds since the control plane last reported; active beyond the threshold (seconds)."""
    text = (
        f"No control-plane heartbeat or metric for {elapsed_text(timedelta(seconds=silent_s))} "
        f"({threshold_text(rule)})"
    )
    return _sample({}, silent_s, silent_s > float(rule.threshold), text)
