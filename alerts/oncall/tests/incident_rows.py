"""Incidents, routes and pages written directly (the rule engine is tested elsewhere), for the
tests of the alerts pages, acknowledgement and the API. Each helper writes in the current
schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from alerts.oncall.domain.rules import RULES, fingerprint
from alerts.oncall.models import Incident, Route

QUEUE = "factory_queue_depth_high"
FAILURES = "factory_run_failure_rate_high"
AI_COST = "factory_ai_cost_anomaly"


def incident_make(
    rule: str = QUEUE,
    labels: dict[str, str] | None = None,
    *,
    state: str = Incident.State.FIRING,
    summary: str = "",
    now: datetime | None = None,
    **fields: Any,
) -> Incident:
    """A firing incident of ``rule`` by default: pending since 15 minutes, fired 5 minutes ago,
    value 1,240 over 1,000 (peak 1,300). A resolved one resolved a minute ago."""
    now = now or timezone.now()
    labels = {"queue_name": "builds"} if labels is None else labels
    values: dict[str, Any] = {
        "rule": rule,
        "labels": labels,
        "fingerprint": fingerprint(rule, labels),
        "severity": RULES[rule].severity,
        "state": state,
        "summary": summary or f"{RULES[rule].title}: {labels}",
        "value": 1240.0,
        "threshold": 1000.0,
        "peak": 1300.0,
        "started_at": now - timedelta(minutes=15),
        "fired_at": None if state == Incident.State.PENDING else now - timedelta(minutes=5),
        "resolved_at": now - timedelta(minutes=1) if state == Incident.State.RESOLVED else None,
    }
    values.update(fields)
    return Incident.objects.create(**values)


def pagerduty_route(**fields: Any) -> Route:
    values: dict[str, Any] = {
        "name": "On-call PagerDuty",
        "channel": Route.Channel.PAGERDUTY,
        "severities": ["critical"],
        "routing_key": "R" * 32,
    }
    values.update(fields)
    return Route.objects.create(**values)


def slack_route(**fields: Any) -> Route:
    values: dict[str, Any] = {
        "name": "Slack #ops",
        "channel": Route.Channel.SLACK,
        "severities": ["critical", "warning"],
        "target": "https://hooks.slack.com/services/T/B/X",
    }
    values.update(fields)
    return Route.objects.create(**values)
