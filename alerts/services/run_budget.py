"""``run.over_budget``: a run whose projected total crossed its run budget's warn level or limit
(billing's ``run_guard_crossed``), told once per crossing through the alert engine (inbox,
e-mail to admins and finance, webhooks; ``Alert.Kind.RUN_BUDGET``) and through the on-call routes
(an incident of rule ``run.over_budget``: stop is critical, warn is warning; PagerDuty, Slack,
Teams, e-mail by the routes' severities). A run escalating to stop resolves its warn incident
(the stop incident replaces it); when the run's state falls back its open incidents above the
new state resolve, and when the run ends, whatever its final state, all of them do
(``run_guard_cleared``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from alerts.models import Alert
from alerts.oncall.domain.rules import fingerprint
from alerts.oncall.models import Incident, Page
from alerts.oncall.services.pages import pages_create
from alerts.oncall.services.silences import silence_for
from alerts.services.engine import AlertSpec, alert_raise, staff_emails
from alerts.services.outbox import current_tenant
from factory_portal.money import quantize_cents, usd
from factory_portal.tenants.selectors import tenant_url
from usage.domain.ids import run_path

EVENT = "run.over_budget"
SEVERITY = {"stop": "critical", "warn": "warning"}
LEVEL = {"ok": 0, "warn": 1, "stop": 2}
OPEN = (Incident.State.PENDING, Incident.State.FIRING)


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else str(quantize_cents(amount))


def run_over_budget_raise(
    *,
    run_id: str,
    project: str,
    template: str,
    state: str,
    cost_so_far: Decimal,
    projected: Decimal,
    limit: Decimal | None,
    crossed_at: datetime,
) -> Alert | None:
    """The crossing's alert and incident, in the caller's transaction; None when this crossing
    was raised already (its key includes the crossing's time)."""
    severity = SEVERITY.get(state)
    if severity is None:
        return None
    link = tenant_url(current_tenant(), run_path(run_id))
    data = {
        "event": EVENT,
        "run_id": run_id,
        "project": project,
        "template": template,
        "state": state,
        "cost_so_far": _money(cost_so_far),
        "projected": _money(projected),
        "limit": _money(limit),
        "link": link,
    }
    what = "over its run budget" if state == "stop" else "near its run budget"
    title = f"Run {run_id[:80]} {what}: projected {usd(projected)} of {usd(limit)}"
    labels = {"run_id": run_id, "project": project, "template": template, "state": state}
    # A silence of this rule (or of any) whose matchers these labels meet mutes the crossing's
    # notifications, routes and inbox, as it does a runtime rule's: the incident is kept, marked
    # with the silence (a review found the page sent while the alerts page said "silenced").
    silence = silence_for(EVENT, labels, now=crossed_at)
    muted = silence is not None
    alert = alert_raise(
        AlertSpec(
            key=f"run_budget:{run_id[:100]}:{state}:{crossed_at.isoformat()}",
            kind=Alert.Kind.RUN_BUDGET,
            severity=severity,
            title=title,
            body=(
                f"Project {project}, template {template or '(none)'}: {usd(cost_so_far)} spent, "
                f"{usd(projected)} projected against a limit of {usd(limit)}."
            ),
            url=run_path(run_id),
            data={**data, "silenced_by": silence.pk} if muted else data,
            users=[] if muted else None,
            emails=[] if muted else staff_emails(),
            webhooks=not muted,
        )
    )
    if alert is None:
        return None
    key = fingerprint(EVENT, labels)
    with transaction.atomic():
        if Incident.objects.filter(fingerprint=key, state__in=OPEN).exists():
            return alert
        incident = Incident.objects.create(
            rule=EVENT,
            labels={**labels, **{k: v for k, v in data.items() if k not in labels and v}},
            fingerprint=key,
            severity=severity,
            state=Incident.State.FIRING,
            summary=title[:300],
            value=float(projected),  # the incident's figures are floats (drawing, not money)
            threshold=float(limit) if limit is not None else 0.0,
            peak=float(projected),
            started_at=crossed_at,
            fired_at=crossed_at,
            notified_at=None if muted else crossed_at,
            silence=silence,
        )
        if not muted:
            pages_create(incident, Page.Event.TRIGGER)
        _resolve(run_id, keep=lambda level: level >= LEVEL[state], now=crossed_at)
    return alert


def _resolve(run_id: str, *, keep, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """Resolve the run's open incidents whose state level ``keep`` does not keep."""
    resolved = 0
    with transaction.atomic():
        incidents = Incident.objects.filter(
            rule=EVENT, labels__run_id=run_id, state__in=OPEN
        ).select_for_update()
        for incident in incidents:
            if keep(LEVEL.get(str(incident.labels.get("state")), 0)):
                continue
            incident.state = Incident.State.RESOLVED
            incident.resolved_at = now
            incident.save(update_fields=["state", "resolved_at"])
            if incident.notified_at is not None:  # a silenced one sent no trigger to resolve
                pages_create(incident, Page.Event.RESOLVE)
            resolved += 1
    return resolved


def run_over_budget_clear(*, run_id: str, state: str, now: datetime) -> int:
    """Resolve the run's open incidents above ``state`` ("ok": all of them); returns how many."""
    return _resolve(run_id, keep=lambda level: level <= LEVEL.get(state, 0), now=now)
