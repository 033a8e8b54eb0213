"""Sending one outbox row: an e-mail (HTML and text) or a signed webhook request.

A delivery is locked while it is sent (``SELECT … FOR UPDATE SKIP LOCKED``), so the task and the
sweeper never send it twice at once; once ``sent`` it is never sent again. Webhooks: 2xx is
delivered; 408, 429, 5xx, timeouts and connection errors are retried with exponential backoff up to
``MAX_ATTEMPTS``; other 4xx and every 3xx (redirects are never followed) fail at once. The
request goes only to an address that passed the check (``alerts.services.webhook_http``). A
suspended tenant's deliveries fail unsent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import iri_to_uri

from alerts.domain.webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    payload_body,
    retry_delay_s,
    signature,
)
from alerts.models import Alert, Delivery
from alerts.services.webhook_http import WebhookRefused, webhook_post, webhook_target
from factory_portal.observability import metrics
from factory_portal.tenants.models import Tenant

MAX_ATTEMPTS = 8
TIMEOUT_S = (3.0, 10.0)  # connect, read
# A suspended tenant's outbox is not sent (nor kept to flood its receivers on reactivation).
SUSPENDED = "Not sent: the account is suspended."


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | pending (retry later) | failed | skipped (not pending or locked)
    retry_in_s: int | None = None


def _tenant() -> Tenant:
    """The current schema's tenant (inside tasks ``connection.tenant`` may be a stand-in)."""
    current = getattr(connection, "tenant", None)
    if isinstance(current, Tenant):
        return current
    return Tenant.objects.get(schema_name=connection.schema_name)


def _tenant_suspended() -> bool:
    """Read at send time: a worker's tenant object may predate the suspension."""
    return Tenant.objects.filter(
        schema_name=connection.schema_name, status=Tenant.Status.SUSPENDED
    ).exists()


def alert_body(alert: Alert) -> bytes:
    return payload_body(
        alert_id=f"alt_{connection.schema_name}_{alert.pk}",
        kind=alert.kind,
        created_at=alert.created_at,
        tenant=_tenant().slug,
        title=alert.title,
        data=alert.data,
    )


def delivery_send(delivery_id: int) -> Outcome:
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("alert", "endpoint")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return Outcome("skipped")
        if _tenant_suspended():
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = SUSPENDED
            delivery.save(update_fields=["status", "last_error"])
            return Outcome("failed")
        delivery.attempts += 1
        if delivery.channel == Delivery.Channel.EMAIL:
            retryable, error, code, elapsed_ms = _email(delivery)
        else:
            retryable, error, code, elapsed_ms = _webhook(delivery)
        now = timezone.now()
        delivery.last_status_code = code
        delivery.response_ms = elapsed_ms
        delivery.last_error = error[:500]
        outcome: Outcome
        if not error:
            delivery.status = Delivery.Status.SENT
            delivery.sent_at = now
            outcome = Outcome("sent")
        elif retryable and delivery.attempts < MAX_ATTEMPTS:
            delay = retry_delay_s(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            outcome = Outcome("pending", retry_in_s=delay)
        else:
            delivery.status = Delivery.Status.FAILED
            outcome = Outcome("failed")
        delivery.save()
        channel = str(delivery.channel)
        metric_outcome = "retry" if outcome.status == "pending" else outcome.status
        transaction.on_commit(
            lambda: metrics.guarded(
                lambda: metrics.NOTIFICATION_DELIVERIES.labels(channel, metric_outcome).inc()
            )
        )
    return outcome


def _email(delivery: Delivery) -> tuple[bool, str, int | None, int | None]:
    alert = delivery.alert
    tenant = _tenant()
    context = {
        "alert": alert,
        "tenant": tenant,
        "link": _absolute(alert.url, tenant),
    }
    message = EmailMultiAlternatives(
        # One line: titles carry client strings (a run id from an OTLP span may hold a line
        # break), and Django refuses a subject with one, so the mail would never go out.
        subject=" ".join(f"[{tenant.name}] {alert.title}".split()),
        body=render_to_string("alerts/email/alert.txt", context),
        to=[delivery.recipient],
    )
    message.attach_alternative(render_to_string("alerts/email/alert.html", context), "text/html")
    started = time.perf_counter()
    try:
        message.send()
    except (OSError, Exception) as exc:  # SMTP errors: retried
        return True, f"{type(exc).__name__}: {exc}", None, None
    return False, "", None, round((time.perf_counter() - started) * 1000)


def _absolute(path: str, tenant: Tenant) -> str:
    if not path or not path.startswith("/"):
        return path
    scheme = "https" if settings.PORTAL_SECURE else "http"
    domain = tenant.get_primary_domain()
    host = domain.domain if domain else settings.PORTAL_BASE_DOMAIN
    return f"{scheme}://{host}{iri_to_uri(path)}"  # run links keep non-ASCII ids unencoded


def _webhook(delivery: Delivery) -> tuple[bool, str, int | None, int | None]:
    """Only fixed reasons reach the log ("HTTP 500", "redirect refused", "address not
    allowed"): a receiver's answer, possibly an internal service's, is never stored."""
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.enabled:
        return False, "The webhook endpoint was disabled or deleted.", None, None
    try:
        target = webhook_target(endpoint.url)
    except WebhookRefused as exc:
        return exc.retryable, exc.reason, None, None
    body = alert_body(delivery.alert)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "FactoryPortal-Webhooks/1",
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
        EVENT_HEADER: delivery.alert.kind,
        ID_HEADER: str(delivery.pk),
    }
    started = time.perf_counter()
    answer = webhook_post(target, body=body, headers=headers, timeout=TIMEOUT_S)
    elapsed = round((time.perf_counter() - started) * 1000)
    return answer.retryable, answer.reason, answer.status_code, elapsed
