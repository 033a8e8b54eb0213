"""Evaluating the runtime rules of the connection's schema (the platform's in public, else the
tenant's): each enabled rule's samples (``services.conditions``) move its incidents through
``domain.lifecycle``, and the incidents that fire or resolve are sent to the routes' outbox
(``services.pages``) and, in a tenant, posted to its inbox (``alerts.services.engine``).

One transaction per incident, holding its row lock (``SELECT … FOR UPDATE``); a new incident is
protected by the one-open-per-fingerprint constraint (the loser of a race re-reads the winner's
row). So two evaluations at once, on two workers, move an incident once and notify once.

A silenced incident (``services.silences``) follows its lifecycle without notifying: its trigger
goes out at the first evaluation after the silence ends, if it is still firing; a resolve goes
out only for an incident whose trigger did. A disabled rule's open incidents resolve (pending
ones are dropped).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import get_public_schema_name

from alerts.models import Alert
from alerts.oncall.domain import lifecycle
from alerts.oncall.domain.conditions import Sample, measure_text
from alerts.oncall.domain.lifecycle import Action, Open
from alerts.oncall.domain.rules import (
    PLATFORM,
    TENANT,
    Rule,
    condition_text,
    duration_text,
    effective,
    fingerprint,
    rules_for,
)
from alerts.oncall.models import Incident, RuleSetting, Silence
from alerts.oncall.services import conditions
from alerts.oncall.services.pages import pages_create
from alerts.oncall.services.silences import silence_for, silences_active
from alerts.services.engine import AlertSpec, alert_raise
from alerts.services.run_budget import EVENT as RUN_BUDGET_EVENT
from factory_portal.tenants.connection import connection_zone
from runtime.domain.health import elapsed_text

logger = logging.getLogger(__name__)
OPEN_STATES = (Incident.State.PENDING, Incident.State.FIRING)


@dataclass
class Summary:
    """What one evaluation did (the task's result and log line)."""

    scope: str
    rules: int = 0  # enabled rules evaluated
    samples: int = 0
    actions: dict[str, int] = field(default_factory=dict)  # lifecycle action → incidents
    triggers: int = 0  # incidents whose trigger went out
    resolves: int = 0  # resolved incidents whose resolve went out
    failed_rules: list[str] = field(default_factory=list)  # read errors (logged)

    def count(self, action: Action) -> None:
        if action is not Action.NOTHING:
            self.actions[action.value] = self.actions.get(action.value, 0) + 1


def scope_of_connection() -> str:
    return PLATFORM if connection.schema_name == get_public_schema_name() else TENANT


def rules_evaluate(*, now: datetime) -> Summary:
    """Every rule of the connection's scope at ``now`` (see the module's docstring)."""
    scope = scope_of_connection()
    summary = Summary(scope)
    overrides = {s.rule: s for s in RuleSetting.objects.all()}
    silences = silences_active(now)
    clear_for = timedelta(seconds=settings.ONCALL_CLEAR_FOR_S)
    for base in rules_for(scope):
        rule = effective(base, overrides.get(base.key))
        open_labels = dict(
            Incident.objects.filter(rule=rule.key, state__in=OPEN_STATES).values_list(
                "fingerprint", "labels"
            )
        )
        found: list[Sample] = []
        if rule.enabled:
            summary.rules += 1
            try:
                found = conditions.samples(rule, scope=scope, now=now)
            except Exception:
                # One rule's broken read must not stop the others (nor resolve its incidents).
                logger.exception("runtime rule %s could not be read", rule.key)
                summary.failed_rules.append(rule.key)
                continue
        summary.samples += len(found)
        by_fingerprint = {fingerprint(rule.key, s.labels): s for s in found}
        for gone, labels in open_labels.items():  # no sample any more: the condition cleared
            by_fingerprint.setdefault(gone, Sample(labels=labels or {}))
        for fingerprint_key, sample in by_fingerprint.items():
            outcome = incident_evaluate(
                rule,
                fingerprint_key,
                sample,
                now=now,
                # A disabled rule's incidents resolve now, without waiting to stay clear.
                resolve_delay=clear_for if rule.enabled else timedelta(0),
                silences=silences,
            )
            summary.count(outcome.action)
            summary.triggers += outcome.triggered
            summary.resolves += outcome.resolved
    if scope == TENANT:  # run budgets are a tenant's
        summary.triggers += muted_crossings_send(now=now, silences=silences)
    if set(summary.actions) - {Action.STAY.value}:  # quiet unless an incident moved
        logger.info(
            "runtime rules evaluated",
            extra={"scope": scope, "actions": summary.actions, "triggers": summary.triggers},
        )
    return summary


def muted_crossings_send(*, now: datetime, silences: list[Silence] | None = None) -> int:
    """Run-budget crossings (``alerts.services.run_budget``) made during a silence and still
    open, paged once no silence mutes them any more, as a runtime rule's incident is when its
    silence ends; returns how many. Without this, a one-hour silence hid a run's stop crossing
    for good while the run went on spending (a review found it)."""
    sent = 0
    waiting = Incident.objects.filter(
        rule=RUN_BUDGET_EVENT, state=Incident.State.FIRING, notified_at__isnull=True
    )
    for incident in waiting:
        if silence_for(incident.rule, incident.labels, now=now, active=silences) is not None:
            continue
        with transaction.atomic():
            locked = (
                Incident.objects.select_for_update()
                .filter(pk=incident.pk, state=Incident.State.FIRING, notified_at__isnull=True)
                .first()
            )
            if locked is None:  # resolved or sent meanwhile
                continue
            pages_create(locked, "trigger")
            locked.notified_at = now
            locked.save(update_fields=["notified_at"])
            sent += 1
    return sent


@dataclass(frozen=True)
class Outcome:
    action: Action
    triggered: bool = False
    resolved: bool = False  # a resolve went out


def incident_evaluate(
    rule: Rule,
    fingerprint_key: str,
    sample: Sample,
    *,
    now: datetime,
    resolve_delay: timedelta,
    silences: list[Silence] | None = None,
) -> Outcome:
    """Apply one sample to the open incident of ``fingerprint_key`` (rule and labels) in one
    transaction. Two evaluations racing to open the same incident: the second's insert fails on
    the one-open constraint after the first commits, and it runs again on the first's row."""
    try:
        with transaction.atomic():
            return _locked_evaluate(rule, fingerprint_key, sample, now, resolve_delay, silences)
    except IntegrityError:
        with transaction.atomic():
            return _locked_evaluate(rule, fingerprint_key, sample, now, resolve_delay, silences)


def _locked_evaluate(
    rule: Rule,
    fingerprint_key: str,
    sample: Sample,
    now: datetime,
    resolve_delay: timedelta,
    silences: list[Silence] | None,
) -> Outcome:
    incident = (
        Incident.objects.select_for_update()
        .filter(fingerprint=fingerprint_key, state__in=OPEN_STATES)
        .first()
    )
    state = (
        Open(incident.state, incident.started_at, incident.fired_at, incident.clear_since)
        if incident is not None
        else Open()
    )
    move = lifecycle.step(
        state, active=sample.active, now=now, for_s=rule.for_s, resolve_delay=resolve_delay
    )
    if move.action is Action.NOTHING:
        return Outcome(move.action)
    if move.action is Action.DROP:  # a pending incident: it never notified anyone
        if incident is not None:
            incident.delete()
        return Outcome(move.action)
    if incident is None:
        incident = Incident(
            rule=rule.key,
            labels=dict(sample.labels),
            fingerprint=fingerprint_key,
            severity=rule.severity,  # kept for the incident's life: its trigger's routes
            started_at=now,
        )
    _figures(incident, rule, sample, now)
    incident.state = move.state
    incident.clear_since = move.clear_since
    if move.action is Action.FIRE:
        incident.fired_at = now
    if move.action is Action.RESOLVE:
        incident.resolved_at = now
    silence = None
    if incident.state in OPEN_STATES:
        silence = silence_for(rule.key, incident.labels, now=now, active=silences)
        if silence is not None:
            incident.silence = silence  # kept after it ends: who muted it, and why
    incident.save()
    triggered = resolved = False
    if incident.state == Incident.State.FIRING and incident.notified_at is None and not silence:
        pages_create(incident, "trigger")
        if incident.acknowledged_at is not None:  # acknowledged while pending or silenced
            pages_create(incident, "acknowledge")
        incident.notified_at = now
        incident.save(update_fields=["notified_at"])
        _inbox_trigger(incident, rule, now)
        triggered = True
    if move.action is Action.RESOLVE and incident.notified_at is not None:
        pages_create(incident, "resolve")
        _inbox_resolved(incident, rule)
        resolved = True
    return Outcome(move.action, triggered, resolved)


def _figures(incident: Incident, rule: Rule, sample: Sample, now: datetime) -> None:
    """The sample's value (the peak the largest while open), the summary, the threshold."""
    incident.last_evaluated_at = now
    incident.threshold = float(rule.threshold)
    incident.value = sample.value
    if sample.value is not None:
        incident.peak = sample.value if incident.peak is None else max(incident.peak, sample.value)
    if sample.summary:
        incident.summary = sample.summary


def incident_title(rule: Rule, labels: Mapping[str, object]) -> str:
    """ "Queue depth high: build": the rule's title and its label values."""
    named = ", ".join(str(v) for v in labels.values())
    return f"{rule.title}: {named}" if named else rule.title


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return f"{moment.astimezone(connection_zone()):%Y-%m-%d %H:%M %Z}"


def _inbox_trigger(incident: Incident, rule: Rule, now: datetime) -> None:
    """The tenant's inbox (and its webhooks) hear of a firing incident, with an Acknowledge
    button; e-mail goes by the routes. The platform has no inbox."""
    if scope_of_connection() != TENANT:
        return
    alert_raise(
        AlertSpec(
            key=f"incident:{incident.pk}:firing",
            kind=Alert.Kind.RUNTIME,
            severity=incident.severity,
            title=incident_title(rule, incident.labels),
            body=_trigger_body(incident, rule, now),
            url=f"/alerts/{incident.pk}/",
            data=_data(incident),
            emails=[],
            webhooks=True,
            action_url=f"/alerts/{incident.pk}/ack/",
            action_label="Acknowledge",
        )
    )


def _trigger_body(incident: Incident, rule: Rule, now: datetime) -> str:
    """ "Queue build: 1,240 jobs waiting … Firing since 2026-11-30 09:00 UTC, after 10 min
    pending. Rule: … for 10 min. Scale up workers, investigate bottleneck." """
    fired = incident.fired_at or now
    text = f"{incident.summary}. Firing since {_local(fired)}"
    if fired > incident.started_at:
        text += f", after {elapsed_text(fired - incident.started_at)} pending"
    text += f". Rule: {condition_text(rule)}"
    if rule.for_s:
        text += f" for {duration_text(rule.for_s)}"
    return f"{text}. {rule.action}."


def _inbox_resolved(incident: Incident, rule: Rule) -> None:
    if scope_of_connection() != TENANT:
        return
    lasted = (incident.resolved_at or incident.last_evaluated_at) - (
        incident.fired_at or incident.started_at
    )
    peak = f" Peak {measure_text(incident.peak, rule.unit)}." if incident.peak is not None else ""
    alert_raise(
        AlertSpec(
            key=f"incident:{incident.pk}:resolved",
            kind=Alert.Kind.RUNTIME,
            severity="info",
            title=f"Resolved: {incident_title(rule, incident.labels)}",
            body=(
                f"Resolved at {_local(incident.resolved_at)} after "
                f"{elapsed_text(lasted)} firing (since "
                f"{_local(incident.fired_at)}).{peak} Last reading: {incident.summary}."
            ),
            url=f"/alerts/{incident.pk}/",
            data=_data(incident),
            emails=[],
            webhooks=True,
        )
    )


def _data(incident: Incident) -> dict[str, object]:
    """The webhook payload's ``data`` of a runtime alert."""
    return {
        "incident": incident.pk,
        "rule": incident.rule,
        "labels": incident.labels,
        "state": incident.state,
        "severity": incident.severity,
        "value": incident.value,
        "threshold": incident.threshold,
        "peak": incident.peak,
        "started_at": incident.started_at.isoformat(),
        "fired_at": incident.fired_at.isoformat() if incident.fired_at else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }
