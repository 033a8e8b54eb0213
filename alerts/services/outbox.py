"""The outbox's bookkeeping, shared by alert deliveries (``alerts.services.deliver``) and incident
pages (``alerts.oncall.services.send``): how one row is sent at most once at a time, what an
attempt records, when it is retried, and the sweeper's pass over the due rows.

A row (``Delivery`` or ``Page``: ``status``, ``attempts``, ``next_attempt_at``, ``last_error``,
``last_status_code``, ``response_ms``, ``sent_at``) is locked while it is sent (``SELECT … FOR
UPDATE SKIP LOCKED``), so the task and the sweeper never send it twice at once; once ``sent`` it
is never sent again. A retryable failure is tried again after ``retry_delay_s`` up to
``MAX_ATTEMPTS``; anything else fails at once. A suspended tenant's rows fail unsent. Only fixed
reasons reach the log ("HTTP 500", "address not allowed"), never text a receiver chose.

What is sent, and how, is the caller's business (``attempt``); this module never builds a
message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.core.mail import EmailMultiAlternatives
from django.db import connection, models, transaction
from django.utils import timezone

from alerts.domain.webhooks import retry_delay_s
from alerts.services.webhook_http import WebhookRefused, webhook_post, webhook_target
from factory_portal.observability import metrics
from factory_portal.tenants.models import Tenant

MAX_ATTEMPTS = 8
TIMEOUT_S = (3.0, 10.0)  # connect, read
FLUSH_BATCH = 200
# A suspended tenant's outbox is not sent (nor kept to flood its receivers on reactivation).
SUSPENDED = "Not sent: the account is suspended."

Row = TypeVar("Row", bound=models.Model)


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | pending (retry later) | failed | skipped (not pending or locked)
    retry_in_s: int | None = None


@dataclass(frozen=True)
class Attempt:
    """What one try did: ``error`` is "" when delivered, else the fixed reason for the log."""

    error: str = ""
    retryable: bool = False
    status_code: int | None = None
    response_ms: int | None = None


def current_tenant() -> Tenant:
    """The current schema's tenant (inside tasks ``connection.tenant`` may be a stand-in)."""
    current = getattr(connection, "tenant", None)
    if isinstance(current, Tenant):
        return current
    return Tenant.objects.get(schema_name=connection.schema_name)


def tenant_suspended() -> bool:
    """Read at send time: a worker's tenant object may predate the suspension."""
    return Tenant.objects.filter(
        schema_name=connection.schema_name, status=Tenant.Status.SUSPENDED
    ).exists()


def outbox_send(
    rows: models.QuerySet[Row],
    pk: int,
    *,
    attempt: Callable[[Row], Attempt],
    channel: Callable[[Row], str],
) -> Outcome:
    """Send the pending row ``pk`` of ``rows`` once (skipped when another sender holds it or it
    is no longer pending), record the attempt and decide: sent, retry later, or failed. The
    delivery counter (``notification_deliveries``) is bumped after commit, by ``channel``."""
    with transaction.atomic():
        row: Any = (
            rows.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=pk, status="pending")
            .first()
        )
        if row is None:
            return Outcome("skipped")
        if tenant_suspended():
            row.status = "failed"
            row.last_error = SUSPENDED
            row.save(update_fields=["status", "last_error"])
            return Outcome("failed")
        row.attempts += 1
        tried = attempt(row)
        now = timezone.now()
        row.last_status_code = tried.status_code
        row.response_ms = tried.response_ms
        row.last_error = tried.error[:500]
        outcome: Outcome
        if not tried.error:
            row.status = "sent"
            row.sent_at = now
            outcome = Outcome("sent")
        elif tried.retryable and row.attempts < MAX_ATTEMPTS:
            delay = retry_delay_s(row.attempts)
            row.next_attempt_at = now + timedelta(seconds=delay)
            outcome = Outcome("pending", retry_in_s=delay)
        else:
            row.status = "failed"
            outcome = Outcome("failed")
        row.save()
        label = str(channel(row))
        metric_outcome = "retry" if outcome.status == "pending" else outcome.status
        transaction.on_commit(
            lambda: metrics.guarded(
                lambda: metrics.NOTIFICATION_DELIVERIES.labels(label, metric_outcome).inc()
            )
        )
    return outcome


def outbox_flush(
    rows: models.QuerySet[Row], send: Callable[[int], Outcome], *, batch: int = FLUSH_BATCH
) -> dict[str, int]:
    """The sweeper: send every pending row of ``rows`` that is due (first attempts the broker
    never got, retries whose backoff has passed), oldest first; counts by outcome."""
    due = list(
        rows.filter(status="pending", next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    counts: dict[str, int] = {}
    for pk in due:
        status = send(pk).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def http_attempt(url: str, *, body: bytes, headers: dict[str, str]) -> Attempt:
    """POST ``body`` to ``url`` through the address check (``alerts.services.webhook_http``): 2xx
    is delivered; 408, 425, 429, 5xx, timeouts and connection errors are retryable; other 4xx
    and every 3xx (never followed) are not."""
    try:
        target = webhook_target(url)
    except WebhookRefused as exc:
        return Attempt(exc.reason, exc.retryable)
    started = time.perf_counter()
    answer = webhook_post(target, body=body, headers=headers, timeout=TIMEOUT_S)
    elapsed = round((time.perf_counter() - started) * 1000)
    return Attempt(answer.reason, answer.retryable, answer.status_code, elapsed)


def email_attempt(message: EmailMultiAlternatives) -> Attempt:
    """Send one e-mail; an SMTP error is retryable and logged by its type only."""
    started = time.perf_counter()
    try:
        message.send()
    except Exception as exc:
        # The exception's name only: its text may name our mail server or a recipient, and the
        # log is read on the incident page and through the API.
        return Attempt(f"e-mail not sent ({type(exc).__name__})", retryable=True)
    return Attempt(response_ms=round((time.perf_counter() - started) * 1000))
