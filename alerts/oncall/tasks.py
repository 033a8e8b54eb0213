"""Celery tasks of on-call alerting. The beat tasks run in the public schema: they do the
platform's own work there and fan out one task per customer tenant."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.utils import timezone

from alerts.oncall.models import Page
from alerts.oncall.services.evaluate import rules_evaluate
from alerts.oncall.services.send import page_send
from alerts.services.outbox import outbox_flush
from factory_portal.celery import app
from factory_portal.tenants.fanout import tenants_fan_out

logger = logging.getLogger(__name__)
# An evaluation still queued after this long is dropped: a newer one has been published since
# (a worker back from an outage runs one per tenant, not every one it missed).
EVALUATION_EXPIRES_S = 300


@app.task(expires=EVALUATION_EXPIRES_S)
def oncall_evaluate_all() -> int:
    """Beat (``oncall-evaluate``): the platform's rules here, then one evaluation per customer
    tenant (published even if the platform's failed). Returns how many tenants."""
    try:
        rules_evaluate(now=timezone.now())
    finally:
        fanned = tenants_fan_out(oncall_evaluate_tenant)
    return fanned


@app.task(expires=EVALUATION_EXPIRES_S)
def oncall_evaluate_tenant() -> dict[str, Any]:
    """The runtime rules of the tenant whose schema the task runs in."""
    return dataclasses.asdict(rules_evaluate(now=timezone.now()))


@app.task
def page_send_task(page_id: int) -> str:
    """Send one outbox row (in the schema it was enqueued from); a retryable failure schedules
    the next attempt (the sweeper catches it if that publish fails)."""
    outcome = page_send(page_id)
    if outcome.status == "pending" and outcome.retry_in_s is not None:
        try:
            page_send_task.apply_async(args=[page_id], countdown=outcome.retry_in_s, retry=False)
        except Exception:
            logger.warning("could not schedule the retry of page %s", page_id)
    return outcome.status


@app.task
def pages_flush_all() -> int:
    """Beat, in the public schema: send the platform's due pages here, then sweep every
    customer tenant's outbox in its own schema. Returns how many tenants were fanned out to."""
    pages_flush_tenant()
    return tenants_fan_out(pages_flush_tenant)


@app.task
def pages_flush_tenant() -> dict[str, int]:
    """Send the schema's due pages (first attempts the broker never got, retries whose backoff
    has passed), oldest first."""
    return outbox_flush(Page.objects.all(), page_send)
