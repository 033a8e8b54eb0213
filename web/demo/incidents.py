"""The demo's runtime incident history: resolved incidents of the on-call rules, read off the very
metric stream the demo stores (``web.demo.runtime.metrics_history``), so the alerts page and the
runtime pages tell the same story.

- ``factory_queue_depth_high`` for each queue whose depth stayed over the rule's threshold for its
  duration (the incident three days ago backs ``jobs-default`` up): pending from the first sample
  over it, firing once it held for the rule's ``for``, resolved at the first sample back under it.
- ``factory_run_failure_rate_high`` for the same incident: runs failed at about four times the
  usual rate while the pools were down to a quarter; pending from the incident's start, firing
  after the rule's ``for``, resolved one window after the incident ended; its value is the share
  of runs that failed during the incident, from the stream's run counters.

Deriving is pure and deterministic (the stream is); ``incidents_store`` writes the rows in the
current schema, with nothing in the routes' outbox (the history is not sent anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from alerts.oncall.domain.rules import RULES, Rule, fingerprint

QUEUE_RULE = RULES["factory_queue_depth_high"]
FAILURE_RULE = RULES["factory_run_failure_rate_high"]


@dataclass(frozen=True)
class DemoIncident:
    rule: Rule
    labels: dict[str, str]
    summary: str
    value: float  # at resolve
    peak: float
    started_at: datetime
    fired_at: datetime
    resolved_at: datetime


@dataclass
class MetricTrace:
    """What the incidents are read from: each queue's depth samples and the cumulative run
    counters (succeeded, failed), by sample time."""

    depths: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    runs: dict[datetime, list[float]] = field(default_factory=dict)

    def add(self, request: ExportMetricsServiceRequest) -> None:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "queue_depth":
                        for point in metric.gauge.data_points:
                            labels = {a.key: a.value.string_value for a in point.attributes}
                            self.depths.setdefault(labels["queue_name"], []).append(
                                (_time(point.time_unix_nano), point.as_double)
                            )
                    elif metric.name in ("run_success_total", "run_failure_total"):
                        index = 0 if metric.name == "run_success_total" else 1
                        for point in metric.sum.data_points:
                            counts = self.runs.setdefault(_time(point.time_unix_nano), [0.0, 0.0])
                            counts[index] += point.as_double


def _time(unix_nano: int) -> datetime:
    return datetime.fromtimestamp(unix_nano / 1_000_000_000, UTC)


def queue_incidents(trace: MetricTrace, rule: Rule = QUEUE_RULE) -> list[DemoIncident]:
    """Every resolved episode of a queue's depth over ``rule``'s threshold that held for its
    duration, oldest first."""
    threshold = float(rule.threshold)
    found = []
    for queue, samples in sorted(trace.depths.items()):
        started: datetime | None = None
        fired: tuple[datetime, float] | None = None
        peak = 0.0
        for at, depth in sorted(samples):
            if depth > threshold:
                started = started or at
                peak = max(peak, depth)
                if fired is None and at - started >= timedelta(seconds=rule.for_s):
                    fired = (at, depth)
                continue
            if started is not None and fired is not None:
                found.append(
                    DemoIncident(
                        rule=rule,
                        labels={"queue_name": queue},
                        summary=(
                            f"Queue {queue}: {fired[1]:,.0f} jobs waiting (over {threshold:,.0f})"
                        ),
                        value=depth,
                        peak=peak,
                        started_at=started,
                        fired_at=fired[0],
                        resolved_at=at,
                    )
                )
            started, fired, peak = None, None, 0.0
    return sorted(found, key=lambda i: i.started_at)


def failure_rate_incident(
    trace: MetricTrace, *, start: datetime, end: datetime, rule: Rule = FAILURE_RULE
) -> DemoIncident | None:
    """The run failure rate of the incident from ``start`` to ``end``, if over ``rule``'s
    threshold: the share of the runs counted in that time that failed."""
    times = sorted(trace.runs)
    before = [t for t in times if t < start]
    during = [t for t in times if start <= t < end]
    if not before or not during:
        return None  # the stream does not cover the incident
    succeeded, failed = (trace.runs[during[-1]][i] - trace.runs[before[-1]][i] for i in range(2))
    if succeeded + failed == 0:
        return None
    rate = 100 * failed / (succeeded + failed)
    if rate <= float(rule.threshold):
        return None
    return DemoIncident(
        rule=rule,
        labels={},
        summary=(
            f"Run failure rate {rate:.1f}% (over {float(rule.threshold):g}%): {failed:,.0f} of "
            f"{succeeded + failed:,.0f} runs failed from {start:%H:%M} to {end:%H:%M} UTC"
        ),
        value=round(rate, 1),
        peak=round(rate, 1),
        started_at=start,
        fired_at=start + timedelta(seconds=rule.for_s),
        resolved_at=end + timedelta(seconds=rule.window_s),
    )


def demo_incidents(
    trace: MetricTrace, *, incident: datetime, hours: timedelta
) -> list[DemoIncident]:
    """The stream's incident history: queue episodes and the failure rate of the incident that
    started at ``incident`` and lasted ``hours``."""
    found = queue_incidents(trace)
    failing = failure_rate_incident(trace, start=incident, end=incident + hours)
    if failing is not None:
        found.append(failing)
    return sorted(found, key=lambda i: i.started_at)


def incidents_store(incidents: list[DemoIncident]) -> int:
    """Write ``incidents`` as resolved ``Incident`` rows in the current schema."""
    from alerts.oncall.models import Incident

    rows = Incident.objects.bulk_create(
        Incident(
            rule=i.rule.key,
            labels=i.labels,
            fingerprint=fingerprint(i.rule.key, i.labels),
            severity=i.rule.severity,
            state=Incident.State.RESOLVED,
            summary=i.summary,
            value=i.value,
            threshold=float(i.rule.threshold),
            peak=i.peak,
            started_at=i.started_at,
            fired_at=i.fired_at,
            resolved_at=i.resolved_at,
            last_evaluated_at=i.resolved_at,
            notified_at=i.fired_at,
        )
        for i in incidents
    )
    return len(rows)
