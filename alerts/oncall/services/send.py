"""Sending one incident page (a ``Page`` outbox row) to its route: PagerDuty, Slack, Microsoft
Teams or e-mail, and the routes' "Send test".

The outbox guarantees are ``alerts.services.outbox``'s, the same as for alert deliveries: one
sender at a time (``SKIP LOCKED``), sent once, retried with backoff on 429, 5xx and network
errors up to ``MAX_ATTEMPTS``, failed at once on other answers, a suspended tenant's pages
failed unsent, a fixed reason, the status code and the response time in the delivery log.
Requests go through ``alerts.services.webhook_http`` (address check, pinned address). The bodies
are ``alerts.oncall.domain.payloads``'; this module fetches what they need.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone

from alerts.oncall.domain.payloads import (
    TRIGGER,
    Notice,
    dedup_key,
    email_message,
    pagerduty_body,
    slack_body,
    teams_body,
)
from alerts.oncall.domain.rules import RULES, rule_title
from alerts.oncall.models import Incident, Page, Route
from alerts.services.outbox import (
    Attempt,
    Outcome,
    current_tenant,
    email_attempt,
    http_attempt,
    outbox_send,
)
from factory_portal.accounts.models import Role, User
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenant_url

PLATFORM = "platform"
USER_AGENT = "FactoryPortal-Pages/1"
NO_RECIPIENTS = "No recipients: the route names no address and there is no active admin."
WAITING_FOR_TRIGGER = "Waiting for the trigger to this route to go out first."
TRIGGER_FAILED = "Not sent: the trigger to this route was never delivered."


def page_send(page_id: int) -> Outcome:
    """Send one pending page once; see the module docstring for what is retried."""
    return outbox_send(
        Page.objects.select_related("incident", "route"),
        page_id,
        attempt=_page_attempt,
        channel=lambda page: page.route.channel,
    )


def _page_attempt(page: Page) -> Attempt:
    if not page.route.enabled and page.event == Page.Event.TRIGGER:
        return Attempt("The route was disabled.")  # what it paged still resolves there
    if page.event != Page.Event.TRIGGER:
        # A route hears an incident in order: an acknowledge or resolve overtaking a trigger in
        # backoff would leave PagerDuty an incident that never resolves, and a resolve after a
        # trigger that failed would tell Slack of something nobody saw.
        trigger = (
            Page.objects.filter(
                incident_id=page.incident_id, route_id=page.route_id, event=Page.Event.TRIGGER
            )
            .values_list("status", flat=True)
            .first()
        )
        if trigger == Page.Status.PENDING:
            return Attempt(WAITING_FOR_TRIGGER, retryable=True)
        if trigger != Page.Status.SENT:
            return Attempt(TRIGGER_FAILED)
    return notice_deliver(page.route, notice_for(page.incident, page.event))


def notice_for(incident: Incident, event: str, *, now: datetime | None = None) -> Notice:
    """The incident event as every channel tells it, in the current schema."""
    tenant = current_tenant()
    rule = RULES.get(incident.rule)
    now = now or timezone.now()
    if event == Page.Event.RESOLVE:
        duration = (incident.resolved_at or now) - (incident.fired_at or incident.started_at)
    else:  # how long the condition had held when it fired (the same on every retry)
        duration = (incident.fired_at or now) - incident.started_at
    return Notice(
        event=event,
        rule=incident.rule,
        title=rule_title(incident.rule),
        severity=incident.severity,
        summary=incident.summary,
        value=incident.value,
        threshold=incident.threshold,
        unit=rule.unit if rule else "",
        labels={str(k): str(v) for k, v in (incident.labels or {}).items()},
        started_at=incident.started_at,
        fired_at=incident.fired_at,
        resolved_at=incident.resolved_at,
        duration_s=duration.total_seconds(),
        link=tenant_url(tenant, f"/alerts/{incident.pk}/"),
        dedup_key=dedup_key(connection.schema_name, incident.fingerprint, incident.pk),
        source=_source(tenant),
        workspace=_workspace(tenant),
        acknowledged_by=incident.acknowledged_by,
        timezone=tenant.timezone,
    )


def notice_deliver(route: Route, notice: Notice) -> Attempt:
    """Send ``notice`` over ``route`` now (one try; the outbox decides about retries)."""
    if route.channel == Route.Channel.EMAIL:
        return _email(route, notice)
    if route.channel == Route.Channel.PAGERDUTY:
        if not route.routing_key:
            return Attempt("The route has no PagerDuty integration key.")
        body = pagerduty_body(notice, routing_key=route.routing_key)
        return _post(settings.PAGERDUTY_EVENTS_URL, body)
    if route.channel == Route.Channel.SLACK:
        return _post(route.target, slack_body(notice))
    if route.channel == Route.Channel.TEAMS:
        return _post(route.target, teams_body(notice))
    return Attempt(f"Unknown channel {route.channel!r}.")


def route_test_send(route: Route) -> Attempt:
    """A test trigger (severity info, its own dedup key) sent over ``route`` now, with the same
    code as a page; nothing is stored. PagerDuty opens an alert for it: resolve it there."""
    tenant = current_tenant()
    now = timezone.now()
    notice = Notice(
        event=TRIGGER,
        rule="test",
        title=f"Test of the route {route.name}",
        severity="info",
        summary=f"A test sent from Factory Portal's alert routes by {_workspace(tenant)}:"
        " nothing is wrong.",
        value=None,
        threshold=None,
        unit="",
        labels={"route": route.name},
        started_at=now,
        fired_at=now,
        resolved_at=None,
        duration_s=0,
        link=tenant_url(tenant, "/alerts/"),
        dedup_key=dedup_key(connection.schema_name, "test", uuid.uuid4().hex),
        source=_source(tenant),
        workspace=_workspace(tenant),
        timezone=tenant.timezone,
    )
    return notice_deliver(route, notice)


def route_recipients(route: Route) -> list[str]:
    """The route's addresses, or when it names none the schema's active admins (the active
    operators on the platform)."""
    named = [a.strip() for a in route.target.split(",") if a.strip()]
    if named:
        return list(dict.fromkeys(a for a in named if _is_email(a)))
    role = Role.OPERATOR if connection.schema_name == "public" else Role.ADMIN
    return list(
        User.objects.filter(is_active=True, role=role)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )


def _email(route: Route, notice: Notice) -> Attempt:
    recipients = route_recipients(route)
    if not recipients:
        return Attempt(NO_RECIPIENTS)
    mail = email_message(notice)
    message = EmailMultiAlternatives(subject=mail.subject, body=mail.text, to=recipients)
    message.attach_alternative(mail.html, "text/html")
    return email_attempt(message)


def _post(url: str, body: dict[str, Any]) -> Attempt:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    return http_attempt(url, body=data, headers=headers)


def _source(tenant: Tenant) -> str:
    return PLATFORM if tenant.is_public else tenant.slug


def _workspace(tenant: Tenant) -> str:
    return "Factory Portal platform" if tenant.is_public else tenant.name


def _is_email(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True
