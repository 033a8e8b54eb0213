"""The figures of each runtime rule at a moment, read in the connection's schema (a tenant's runs
and series in its schema; the platform's series in public), judged by
``alerts.oncall.domain.conditions``. Read only: runs through ``usage.selectors``, metrics and
heartbeats through ``runtime.selectors`` / ``runtime.status``, AI cost through the hourly
rollup's selector. At most ``LABEL_SETS_MAX`` samples per rule (the worst first).

A rule without data in its window gives no sample: a drained or silent queue, too few runs or
jobs to judge, a control plane that never reported. An open incident without a sample clears.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings

from alerts.oncall.domain import conditions as judge
from alerts.oncall.domain.conditions import Sample
from alerts.oncall.domain.rules import TENANT, Rule
from alerts.services.engine import settings_get
from factory_portal.periods import local_date
from factory_portal.tenants.connection import connection_zone
from runtime import selectors, status
from runtime.domain.ranges import RAW_UP_TO, Resolution, Window
from usage import selectors as usage_selectors
from usage.selectors.outcomes import finished_run_counts

LABEL_SETS_MAX = 50
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


def samples(rule: Rule, *, scope: str, now: datetime) -> list[Sample]:
    """The samples of ``rule`` (its effective settings) at ``now``; none for a rule not
    evaluated in ``scope``."""
    if scope not in rule.scopes:
        return []
    return READERS[rule.key](rule, scope, now)[:LABEL_SETS_MAX]


def _window_start(rule: Rule, now: datetime) -> datetime:
    return now - timedelta(seconds=rule.window_s)


def _run_failure_rate(rule: Rule, scope: str, now: datetime) -> list[Sample]:
    """Tenant: its runs that finished in the window. Platform: the increases of the run
    counters the factory reports (``run_failure_total``, ``run_success_total``)."""
    start = _window_start(rule, now)
    if scope == TENANT:
        counts = finished_run_counts(start=start, end=now)
        failed = float(counts.get(usage_selectors.RunStatus.FAILED, 0))
        succeeded = float(counts.get(usage_selectors.RunStatus.SUCCEEDED, 0))
    else:
        failed = sum(selectors.increases("run_failure_total", start=start, end=now).values())
        succeeded = sum(selectors.increases("run_success_total", start=start, end=now).values())
    sample = judge.failure_rate(
        rule, failed=failed, finished=failed + succeeded, min_runs=settings.ONCALL_MIN_RUNS
    )
    return [sample] if sample else []


def _queue_depth(rule: Rule, scope: str, now: datetime) -> list[Sample]:
    """Each queue's ``queue_depth`` averaged over the window (raw points; minute rollups for a
    window longer than raw ranges are read), its series added (one queue reported by several
    brokers), the deepest queues first."""
    span = timedelta(seconds=rule.window_s)
    window = Window(
        start=now - span,
        end=now,
        step=span,
        resolution=Resolution.RAW if span <= RAW_UP_TO else Resolution.MINUTE,
    )
    trend = selectors.gauge_trend("queue_depth", window, by="queue_name")
    averages = {q: line[0] for q, line in trend.lines.items() if line and line[0] is not None}
    deepest = sorted(averages.items(), key=lambda item: (-item[1], item[0]))
    return [judge.queue_depth(rule, queue=queue, average=value) for queue, value in deepest]


def _worker_error_rate(rule: Rule, scope: str, now: datetime) -> list[Sample]:
    """Worker errors per job finished in the window, as the health page reads them:
    increases of ``worker_errors_total`` over the count increase of ``job_duration_seconds``."""
    start = _window_start(rule, now)
    errors = sum(selectors.increases("worker_errors_total", start=start, end=now).values())
    jobs = sum(selectors.increases("job_duration_seconds", start=start, end=now).values())
    sample = judge.worker_error_rate(
        rule, errors=errors, jobs=jobs, min_jobs=settings.ONCALL_MIN_JOBS
    )
    return [sample] if sample else []


def _ai_cost(rule: Rule, scope: str, now: datetime) -> list[Sample]:
    """The AI cost of the last complete hours of the window (whole hours, 1 to 24: the hourly
    rollup is read, never the calls) against the average per window of the 24 hours before.
    No sample until the tenant has usage from before that day (no baseline yet)."""
    hours = min(max(round(rule.window_s / 3600), 1), 24)
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - hours * HOUR
    first = usage_selectors.first_usage_day()
    if first is None or first >= local_date(start - DAY, connection_zone()):
        return []
    cost = usage_selectors.hourly_token_cost(start=start, end=end)
    day_before = usage_selectors.hourly_token_cost(start=start - DAY, end=start)
    return [
        judge.ai_cost(
            rule,
            cost=cost,
            usual=day_before * hours / 24,
            window_s=hours * 3600,
            min_cost=settings_get().anomaly_min_cost,
        )
    ]


def _control_plane_down(rule: Rule, scope: str, now: datetime) -> list[Sample]:
    """Seconds since the control plane's services (``HEALTH_SERVICES["control_plane"]``) last
    reported anything: heartbeats are kept from every signal, metrics included, so a health
    metric counts too. Nothing for a control plane that never reported."""
    last = status.last_beat("control_plane")
    if last is None:
        return []
    return [judge.control_plane(rule, silent_s=max((now - last).total_seconds(), 0.0))]


READERS: dict[str, Callable[[Rule, str, datetime], list[Sample]]] = {
    "factory_run_failure_rate_high": _run_failure_rate,
    "factory_queue_depth_high": _queue_depth,
    "factory_worker_error_rate_spike": _worker_error_rate,
    "factory_ai_cost_anomaly": _ai_cost,
    "factory_control_plane_down": _control_plane_down,
}
