"""The figures of the Factory Health and Queues & Workers pages for one time window (read only).

Run figures (success and failure rates, failure types, run duration percentiles) come from the
tenant's runs through ``usage.selectors.outcomes`` on a tenant's site, and from the platform's
run counters and ``run_duration_seconds`` histogram on the operator host (whose public schema
holds no runs). Everything else is the metrics of the connection's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from runtime import selectors
from runtime.domain.ranges import Window
from runtime.domain.rates import ratio
from runtime.selectors import Trend
from usage.selectors import outcomes

PER_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class RunTrends:
    buckets: list[datetime]
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    rates: dict[str, list[float | None]] = field(default_factory=dict)  # success/failure %
    failure_types: dict[str, list[float | None]] = field(default_factory=dict)  # % of finished
    duration: dict[str, list[float | None]] = field(default_factory=dict)  # minutes

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def success_rate(self) -> float | None:
        share = ratio(self.succeeded, self.finished) if self.finished else None
        return None if share is None else 100 * share


def _percent(part: float, whole: float) -> float | None:
    share = ratio(part, whole) if whole else None
    return None if share is None else round(100 * share, 2)


def run_trends_from_runs(w: Window) -> RunTrends:
    """The tenant's runs finished in the window, per bucket."""
    result = outcomes.run_outcomes(start=w.start, end=w.end, step=w.step)
    kinds = result.failure_types()
    totals = result.by_status()
    return RunTrends(
        buckets=w.buckets,
        succeeded=totals.get("Succeeded", 0),
        failed=totals.get("Failed", 0),
        cancelled=totals.get("Cancelled", 0),
        rates={
            "success %": [
                _percent(b.by_status.get("Succeeded", 0), b.finished) for b in result.buckets
            ],
            "failure %": [
                _percent(b.by_status.get("Failed", 0), b.finished) for b in result.buckets
            ],
        },
        failure_types={
            kind: [
                _percent(b.failures_by_type.get(kind, 0), b.finished) if b.finished else None
                for b in result.buckets
            ]
            for kind in kinds
        },
        duration={
            f"p{round(q * 100)}": [
                None if b.duration_ms.get(q) is None else round(b.duration_ms[q] / 60000, 3)
                for b in result.buckets
            ]
            for q in outcomes.QUANTILES
        },
    )


def run_trends_from_metrics(w: Window) -> RunTrends:
    """The platform's run counters (``run_success_total``, ``run_failure_total`` by
    ``failure_type``, ``run_cancelled_total``) and ``run_duration_seconds``, per bucket."""
    per = w.step  # increases per bucket
    ok = selectors.rate_trend("run_success_total", w, per=per).lines.get("run_success_total")
    failed = selectors.rate_trend("run_failure_total", w, by="failure_type", per=per).lines
    cancelled = selectors.rate_trend("run_cancelled_total", w, per=per).lines.get(
        "run_cancelled_total"
    )
    n = len(w.buckets)
    ok_v = [v or 0.0 for v in (ok or [None] * n)]
    cancelled_v = [v or 0.0 for v in (cancelled or [None] * n)]
    failed_v = [sum((line[i] or 0.0) for line in failed.values()) for i in range(n)]
    finished = [ok_v[i] + failed_v[i] + cancelled_v[i] for i in range(n)]
    duration = selectors.percentile_trend("run_duration_seconds", w, scale=1 / 60)
    return RunTrends(
        buckets=w.buckets,
        succeeded=round(sum(ok_v)),
        failed=round(sum(failed_v)),
        cancelled=round(sum(cancelled_v)),
        rates={
            "success %": [_percent(ok_v[i], finished[i]) for i in range(n)],
            "failure %": [_percent(failed_v[i], finished[i]) for i in range(n)],
        }
        if any(finished)
        else {},
        failure_types={
            kind: [_percent(line[i] or 0.0, finished[i]) for i in range(n)]
            for kind, line in sorted(failed.items())
        },
        duration=duration.lines if not duration.empty else {},
    )


@dataclass(frozen=True)
class PoolRow:
    worker_pool: str
    jobs_processing: float | None
    cpu: float | None
    memory: float | None
    errors_per_minute: float | None


def worker_pools(*, now: datetime) -> list[PoolRow]:
    """Each worker pool now: jobs processing, mean CPU and memory per worker (newest values within
    ``HEALTH_DOWN_AFTER_S``) and errors per minute over ``HEALTH_ERROR_WINDOW_S``."""
    since = now - timedelta(seconds=settings.HEALTH_DOWN_AFTER_S)
    jobs = selectors.latest_gauges("jobs_processing", by="worker_pool", since=since)
    cpu = selectors.latest_levels("worker_cpu_usage", by="worker_pool", since=since, now=now)
    memory = selectors.latest_gauges(
        "worker_memory_usage", by="worker_pool", since=since, combine="mean"
    )
    window_s = settings.HEALTH_ERROR_WINDOW_S
    errors = selectors.increases(
        "worker_errors_total", start=now - timedelta(seconds=window_s), end=now, by="worker_pool"
    )
    pools = sorted(set(jobs) | set(cpu) | set(memory) | set(errors))
    return [
        PoolRow(
            worker_pool=pool,
            jobs_processing=jobs[pool].value if pool in jobs else None,
            cpu=cpu[pool].value if pool in cpu else None,
            memory=memory[pool].value if pool in memory else None,
            errors_per_minute=errors.get(pool, 0.0) * 60 / window_s if errors else None,
        )
        for pool in pools
    ]


@dataclass(frozen=True)
class FactoryHealth:
    runs: RunTrends
    jobs_in_queue: Trend
    jobs_processing: Trend
    processing_rate: Trend
    job_duration: Trend
    pools: list[PoolRow]


def factory_health(*, w: Window, now: datetime, tenant: bool) -> FactoryHealth:
    return FactoryHealth(
        runs=run_trends_from_runs(w) if tenant else run_trends_from_metrics(w),
        jobs_in_queue=selectors.gauge_trend("jobs_in_queue", w, by="job_type"),
        jobs_processing=selectors.gauge_trend("jobs_processing", w, by="worker_pool"),
        processing_rate=selectors.gauge_trend("queue_processing_rate", w, by="queue_name"),
        job_duration=selectors.percentile_trend("job_duration_seconds", w),
        pools=worker_pools(now=now),
    )


@dataclass(frozen=True)
class QueuesWorkers:
    depth: Trend
    jobs_processing: Trend
    cpu: Trend
    memory: Trend
    processing_rate: Trend
    errors: Trend
    retries: Trend
    dlq: Trend


def queues_workers(*, w: Window) -> QueuesWorkers:
    return QueuesWorkers(
        depth=selectors.gauge_trend("queue_depth", w, by="queue_name"),
        jobs_processing=selectors.gauge_trend("jobs_processing", w, by="worker_pool"),
        cpu=selectors.level_trend("worker_cpu_usage", w, by="worker_pool"),
        memory=selectors.gauge_trend("worker_memory_usage", w, by="worker_pool", combine="mean"),
        processing_rate=selectors.gauge_trend("queue_processing_rate", w, by="queue_name"),
        errors=selectors.rate_trend("worker_errors_total", w, by="worker_pool", per=PER_MINUTE),
        retries=selectors.rate_trend("retries_total", w, by="job_type", per=PER_MINUTE),
        dlq=selectors.gauge_trend("dlq_size", w, by="queue_name"),
    )
