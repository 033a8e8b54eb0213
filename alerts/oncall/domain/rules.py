"""The runtime alert rules (the seed's "High-Level Alert Rules"), their defaults, and how an
incident is named: pure, no Django.

A rule is evaluated like a Prometheus alerting rule: a condition over a look-back ``window`` that
must hold for ``for_s`` before the incident fires. A schema's ``RuleSetting`` row overrides the
defaults (enabled, threshold, window, for, severity); ``effective`` merges the two.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

SEVERITIES = ("critical", "warning", "info")
TENANT = "tenant"
PLATFORM = "platform"


@dataclass(frozen=True)
class Rule:
    key: str  # the seed's alert name
    title: str
    condition: str  # the README's and the settings page's wording, with {threshold} {window} {unit}
    unit: str  # of the threshold and the value: "%", "jobs", "times", "s"
    threshold: Decimal
    window_s: int
    for_s: int
    severity: str
    scopes: tuple[str, ...]  # where it is evaluated: a tenant's schema, the platform's (public)
    action: str  # what the on-call person does (the seed's "Action")
    enabled: bool = True


RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        Rule(
            key="factory_run_failure_rate_high",
            title="Run failure rate high",
            condition="failed runs > {threshold}{unit} of runs finished in the last {window}",
            unit="%",
            threshold=Decimal(5),
            window_s=300,
            for_s=120,
            severity="critical",
            scopes=(TENANT, PLATFORM),
            action="Page on-call engineer, investigate failure patterns",
        ),
        Rule(
            key="factory_queue_depth_high",
            title="Queue depth high",
            condition="a queue's depth (average over {window}) > {threshold} {unit}",
            unit="jobs",
            threshold=Decimal(1000),
            window_s=60,
            for_s=600,
            severity="warning",
            scopes=(TENANT, PLATFORM),
            action="Scale up workers, investigate bottleneck",
        ),
        Rule(
            key="factory_worker_error_rate_spike",
            title="Worker error rate spike",
            condition="worker errors > {threshold}{unit} of jobs finished in the last {window}",
            unit="%",
            threshold=Decimal(10),
            window_s=300,
            for_s=120,
            severity="critical",
            scopes=(TENANT, PLATFORM),
            action="Page on-call engineer, investigate worker health",
        ),
        Rule(
            key="factory_ai_cost_anomaly",
            title="AI cost anomaly",
            condition="AI cost of the last {window} > {threshold}{unit} its average over the day"
            " before",
            unit=" times",
            threshold=Decimal(2),
            window_s=3600,
            for_s=0,
            severity="warning",
            scopes=(TENANT,),
            action="Investigate token usage, check for runaway agents",
        ),
        Rule(
            key="factory_control_plane_down",
            title="Control plane down",
            condition="no control-plane heartbeat or health metric for over {threshold} {unit}",
            unit="s",
            threshold=Decimal(120),
            window_s=120,
            for_s=0,
            severity="critical",
            scopes=(TENANT, PLATFORM),
            action="Page on-call engineer, failover to backup",
        ),
    )
}


# Incidents raised by other alerts than the runtime rules, by their rule key: their titles.
RUN_OVER_BUDGET = "run.over_budget"  # billing's run guard raises it (alerts.services.run_budget)
OTHER_TITLES = {RUN_OVER_BUDGET: "Run over its run budget"}
# Every rule an incident can have: what filters and silences may name.
INCIDENT_RULES = (*RULES, *OTHER_TITLES)


def rule_title(key: str) -> str:
    """What an incident's rule is called on pages, pages sent and the silence form."""
    rule = RULES.get(key)
    return rule.title if rule is not None else OTHER_TITLES.get(key, key)


def rules_for(scope: str) -> list[Rule]:
    return [rule for rule in RULES.values() if scope in rule.scopes]


def effective(rule: Rule, setting: Any | None) -> Rule:
    """The rule with a schema's overrides (any object with the ``RuleSetting`` fields)."""
    if setting is None:
        return rule
    return replace(
        rule,
        enabled=bool(setting.enabled),
        threshold=Decimal(setting.threshold),
        window_s=int(setting.window_s),
        for_s=int(setting.for_s),
        severity=str(setting.severity),
    )


def duration_text(seconds: float) -> str:
    """60 → "1 min", 90 → "90 s", 3600 → "1 h", 0 → "0 s"."""
    seconds = int(seconds)
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def condition_text(rule: Rule) -> str:
    threshold = rule.threshold.normalize()
    return rule.condition.format(
        threshold=f"{threshold:,f}", window=duration_text(rule.window_s), unit=rule.unit
    )


def fingerprint(rule: str, labels: Mapping[str, Any]) -> str:
    """Stable name of one alert instance: the rule and its labels (order does not matter)."""
    text = json.dumps([rule, {str(k): str(v) for k, v in labels.items()}], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def silence_matches(
    silence_rule: str, matchers: Mapping[str, Any], rule: str, labels: Mapping[str, Any]
) -> bool:
    """A silence applies to an incident when its rule is blank or the incident's, and every
    matcher is one of the incident's labels with the same value."""
    if silence_rule and silence_rule != rule:
        return False
    return all(str(labels.get(k)) == str(v) and k in labels for k, v in matchers.items())
