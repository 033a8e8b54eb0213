"""Celery tasks of scheduled e-mails. The beat fans out one task per tenant (run in its schema
by tenant-schemas-celery), which makes the due rows and sends them through the outbox."""

from __future__ import annotations

from django.utils import timezone

from alerts.services.outbox import outbox_flush
from factory_portal.celery import app
from factory_portal.tenants.fanout import tenants_fan_out
from saved.models import ScheduledSend
from saved.services import scheduled_send, sends_due_create


@app.task
def scheduled_emails_all() -> int:
    """Beat: the scheduled e-mails of every tenant."""
    return tenants_fan_out(scheduled_emails_tenant)


@app.task
def scheduled_emails_tenant() -> dict[str, int]:
    """Make this tenant's due rows, then send every pending one that is due (new rows, and
    retries whose backoff has passed), oldest first; counts by outcome."""
    sends_due_create(now=timezone.now())
    return outbox_flush(ScheduledSend.objects.all(), scheduled_send)
