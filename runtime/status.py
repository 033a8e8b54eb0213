"""The factory's live status, read: each queue's depth, processing rate, estimated wait and dead
letters, and the health indicators (control plane, data plane / workers, queues, database) from
heartbeats and the metrics of the connection's schema, judged by ``runtime.domain.health`` with
the ``HEALTH_*`` settings. Read only (selectors and pure rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatch

from django.conf import settings

from runtime import selectors
from runtime.domain.health import HealthThresholds, Indicator, Status, indicator_status, overall
from runtime.domain.rates import QueueWait, estimated_wait, ratio

QUEUE_GAUGES = ("queue_depth", "jobs_in_queue", "queue_processing_rate", "dlq_size")
WORKER_METRICS = (
    "jobs_processing",
    "worker_cpu_usage",
    "worker_memory_usage",
    "worker_errors_total",
    "job_duration_seconds",
)
INDICATORS = {
    "control_plane": "Control plane",
    "data_plane": "Data plane (workers)",
    "queues": "Queues",
    "database": "Database",
}
SOURCES = {
    "control_plane": "heartbeats of the control plane's services",
    "data_plane": "worker metrics and heartbeats; errors per job finished",
    "queues": "queue gauges and heartbeats; estimated wait",
    "database": "heartbeats of database services; database errors per job finished",
}


def thresholds() -> HealthThresholds:
    return HealthThresholds(
        stale_after=timedelta(seconds=settings.HEALTH_STALE_AFTER_S),
        down_after=timedelta(seconds=settings.HEALTH_DOWN_AFTER_S),
        error_rate_degraded=settings.HEALTH_ERROR_RATE_DEGRADED,
        error_rate_down=settings.HEALTH_ERROR_RATE_DOWN,
        wait_degraded=timedelta(seconds=settings.HEALTH_QUEUE_WAIT_DEGRADED_S),
        wait_down=timedelta(seconds=settings.HEALTH_QUEUE_WAIT_DOWN_S),
    )


@dataclass(frozen=True)
class QueueRow:
    queue_name: str
    wait: QueueWait
    dlq_size: float | None
    reported_at: datetime


def queue_metrics(*, now: datetime) -> list[QueueRow]:
    """Each queue's newest depth, processing rate (jobs/s), estimated wait and DLQ size, from
    gauges reported within ``HEALTH_DOWN_AFTER_S``."""
    since = now - timedelta(seconds=settings.HEALTH_DOWN_AFTER_S)
    depth = selectors.latest_gauges("queue_depth", by="queue_name", since=since)
    rate = selectors.latest_gauges("queue_processing_rate", by="queue_name", since=since)
    dlq = selectors.latest_gauges("dlq_size", by="queue_name", since=since)
    rows = []
    for name in sorted(set(depth) | set(rate) | set(dlq)):
        d, r, q = depth.get(name), rate.get(name), dlq.get(name)
        times = [x.time for x in (d, r, q) if x is not None]
        rows.append(
            QueueRow(
                queue_name=name,
                wait=estimated_wait(d.value if d else None, r.value if r else None),
                dlq_size=q.value if q else None,
                reported_at=max(times),
            )
        )
    return rows


def jobs_in_queue(*, now: datetime) -> dict[str, selectors.Latest]:
    """Jobs waiting by job type (the ``jobs_in_queue`` gauge)."""
    since = now - timedelta(seconds=settings.HEALTH_DOWN_AFTER_S)
    return selectors.latest_gauges("jobs_in_queue", by="job_type", since=since)


def _newest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


@dataclass(frozen=True)
class Health:
    indicators: list[Indicator]
    heartbeats: list[selectors.HeartbeatRow]

    @property
    def overall(self) -> Status:
        return overall(i.status for i in self.indicators)

    @property
    def sources(self) -> dict[str, str]:
        return SOURCES


def last_beat(key: str, beats: list[selectors.HeartbeatRow] | None = None) -> datetime | None:
    """When the services of indicator ``key`` (their ``HEALTH_SERVICES`` patterns) last
    reported; None if they never did."""
    patterns = settings.HEALTH_SERVICES[key]
    return _newest(
        *(
            b.last_seen
            for b in (selectors.heartbeats() if beats is None else beats)
            if any(fnmatch(b.service.lower(), p.strip().lower()) for p in patterns)
        )
    )


def health(*, now: datetime, queues: list[QueueRow]) -> Health:
    """The four indicators, by the rules of ``runtime.domain.health``."""
    beats = selectors.heartbeats()

    def beat(key: str) -> datetime | None:
        return last_beat(key, beats)

    window_start = now - timedelta(seconds=settings.HEALTH_ERROR_WINDOW_S)
    errors = selectors.increases(
        "worker_errors_total", start=window_start, end=now, by="error_type"
    )
    jobs = selectors.increases("job_duration_seconds", start=window_start, end=now)
    finished = sum(jobs.values())
    db_errors = sum(
        n
        for kind, n in errors.items()
        if any(
            fnmatch(kind.lower(), p.strip().lower()) for p in settings.HEALTH_DATABASE_ERROR_TYPES
        )
    )
    error_rate = ratio(sum(errors.values()), finished) if jobs else None
    db_error_rate = ratio(db_errors, finished) if jobs else None
    waits = [q.wait for q in queues]
    stalled = [w for w in waits if w.stalled]
    worst_wait = (
        stalled[0]
        if stalled
        else max(
            (w for w in waits if w.seconds is not None),
            key=lambda w: w.seconds or 0.0,
            default=None,
        )
    )
    t = thresholds()
    inputs = {
        "control_plane": (beat("control_plane"), None, None),
        "data_plane": (
            _newest(beat("data_plane"), selectors.last_reported(WORKER_METRICS)),
            error_rate,
            None,
        ),
        "queues": (
            _newest(beat("queues"), selectors.last_reported(QUEUE_GAUGES)),
            None,
            worst_wait,
        ),
        "database": (beat("database"), db_error_rate, None),
    }
    return Health(
        indicators=[
            indicator_status(
                key=key,
                name=INDICATORS[key],
                now=now,
                last_reported=last,
                thresholds=t,
                error_rate=rate,
                wait=wait,
            )
            for key, (last, rate, wait) in inputs.items()
        ],
        heartbeats=beats,
    )
