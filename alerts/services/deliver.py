"""Sending one outbox row: an e-mail (HTML and text) or a signed webhook request.

The outbox's guarantees (one sender at a time, sent once, retried with backoff up to
``MAX_ATTEMPTS``, a suspended tenant's rows fail unsent) are ``alerts.services.outbox``'s; this
module says what an alert delivery sends. Webhooks: 2xx is delivered; 408, 429, 5xx, timeouts and
connection errors are retried; other 4xx and every 3xx (redirects are never followed) fail at
once. The request goes only to an address that passed the check
(``alerts.services.webhook_http``).
"""

from __future__ import annotations

import time

from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.template.loader import render_to_string

from alerts.domain.webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    payload_body,
    signature,
)
from alerts.models import Alert, Delivery
from alerts.services.outbox import (
    Attempt,
    Outcome,
    current_tenant,
    email_attempt,
    http_attempt,
    outbox_send,
)
from factory_portal.tenants.selectors import tenant_url


def alert_body(alert: Alert) -> bytes:
    return payload_body(
        alert_id=f"alt_{connection.schema_name}_{alert.pk}",
        kind=alert.kind,
        created_at=alert.created_at,
        tenant=current_tenant().slug,
        title=alert.title,
        data=alert.data,
    )


def delivery_send(delivery_id: int) -> Outcome:
    return outbox_send(
        Delivery.objects.select_related("alert", "endpoint"),
        delivery_id,
        attempt=_attempt,
        channel=lambda delivery: delivery.channel,
    )


def _attempt(delivery: Delivery) -> Attempt:
    if delivery.channel == Delivery.Channel.EMAIL:
        return _email(delivery)
    return _webhook(delivery)


def _email(delivery: Delivery) -> Attempt:
    alert = delivery.alert
    tenant = current_tenant()
    context = {
        "alert": alert,
        "tenant": tenant,
        "link": tenant_url(tenant, alert.url),
    }
    message = EmailMultiAlternatives(
        # One line: titles carry client strings (a run id from an OTLP span may hold a line
        # break), and Django refuses a subject with one, so the mail would never go out.
        subject=" ".join(f"[{tenant.name}] {alert.title}".split()),
        body=render_to_string("alerts/email/alert.txt", context),
        to=[delivery.recipient],
    )
    message.attach_alternative(render_to_string("alerts/email/alert.html", context), "text/html")
    return email_attempt(message)


def _webhook(delivery: Delivery) -> Attempt:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.enabled:
        return Attempt("The webhook endpoint was disabled or deleted.")
    body = alert_body(delivery.alert)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "FactoryPortal-Webhooks/1",
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
        EVENT_HEADER: delivery.alert.kind,
        ID_HEADER: str(delivery.pk),
    }
    return http_attempt(endpoint.url, body=body, headers=headers)
