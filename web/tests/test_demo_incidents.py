"""The demo's incident history is read off the metric stream it stores: one queue incident (the
one three days ago, on the queue it backs up), fired after the rule's ten minutes and resolved
when the queue drained, and the failure rate of the same incident; deterministic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from alerts.oncall.domain.rules import fingerprint
from alerts.oncall.models import Incident, Page
from runtime.models import MetricMinute
from web.demo.incidents import MetricTrace, demo_incidents
from web.demo.runtime import INCIDENT_HOURS, incident_start, metrics_history, metrics_store

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
INCIDENT = incident_start(NOW)  # Nov 17, 14:00 UTC


def _incidents(seed: str, scale: float, offset: float = 0.0):
    trace = MetricTrace()
    for request in metrics_history(
        now=NOW,
        days=4,
        rng=random.Random(seed),
        scale=scale,
        incident_day=INCIDENT,
        zone_offset_hours=offset,
    ):
        trace.add(request)
    return trace, demo_incidents(trace, incident=INCIDENT, hours=INCIDENT_HOURS)


@pytest.mark.parametrize(
    ("scale", "offset"), [(12 / 30, 0.0), (28 / 30, 0.0), (2.0, 0.0), (3.0, 0.0), (2.0, -8.0)]
)
def test_every_demo_size_has_one_queue_incident_and_one_failure_rate_incident(scale, offset):
    trace, incidents = _incidents(f"7:{scale}", scale, offset)
    queue, failing = (
        [i for i in incidents if i.rule.key == "factory_queue_depth_high"],
        [i for i in incidents if i.rule.key == "factory_run_failure_rate_high"],
    )
    # The incident backs jobs-default up; at the largest sizes the priority queue may follow it.
    assert all(INCIDENT <= i.started_at < INCIDENT + INCIDENT_HOURS for i in queue)
    [q] = [i for i in queue if i.labels == {"queue_name": "jobs-default"}]
    assert len(failing) == 1
    assert INCIDENT <= q.started_at < INCIDENT + INCIDENT_HOURS
    assert q.fired_at - q.started_at >= timedelta(minutes=10)
    assert q.fired_at < q.resolved_at < INCIDENT + timedelta(hours=12)  # drained that evening
    assert q.peak > 1000 >= q.value
    # The other days stay under the threshold: the incident is the only one.
    others = [d for t, d in trace.depths["jobs-default"] if not q.started_at <= t < q.resolved_at]
    assert max(others) <= 1000
    [f] = failing
    assert f.value > 5 and (f.started_at, f.resolved_at) == (
        INCIDENT,
        INCIDENT + INCIDENT_HOURS + timedelta(minutes=5),
    )


def test_the_same_seed_gives_the_same_incidents():
    assert _incidents("3:a", 1.0)[1] == _incidents("3:a", 1.0)[1]


@pytest.mark.django_db
def test_seeded_incidents_are_resolved_rows_matching_the_stored_depths(alpha):
    with schema_context(alpha.schema):
        points, _, stored = metrics_store(
            now=NOW, rng=random.Random("9:alpha"), days=4, scale=1.0, tenant=alpha.tenant
        )
        incidents = {i.rule: i for i in Incident.objects.all()}
        queue = incidents["factory_queue_depth_high"]

        def depth(at: datetime) -> float:
            minute = MetricMinute.objects.get(
                series__name="queue_depth",
                series__labels__queue_name="jobs-default",
                start=at.replace(second=0, microsecond=0),
            )
            return minute.last

        assert depth(queue.started_at) > 1000 and depth(queue.fired_at) > 1000
        assert depth(queue.resolved_at) <= 1000
        assert not Page.objects.exists()  # history: nothing to send
    assert points > 0 and stored == 2 == len(incidents)
    assert {i.state for i in incidents.values()} == {"resolved"}
    assert queue.fingerprint == fingerprint(queue.rule, {"queue_name": "jobs-default"})
    assert (queue.severity, queue.threshold) == ("warning", 1000.0)
    assert queue.summary.startswith("Queue jobs-default: ") and "(over 1,000)" in queue.summary
    failing = incidents["factory_run_failure_rate_high"]
    assert failing.severity == "critical" and failing.summary.startswith("Run failure rate ")
    assert failing.notified_at == failing.fired_at
