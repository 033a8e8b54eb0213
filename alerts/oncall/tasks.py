"""Celery tasks of on-call alerting. The beat tasks run in the public schema: they do the
platform's own work there and fan out one task per customer tenant."""

from __future__ import annotations

import logging

from factory_portal.celery import app

logger = logging.getLogger(__name__)


@app.task
def page_send_task(page_id: int) -> str:
    """Send one outbox row (in the schema it was enqueued from); a retryable failure schedules
    the next attempt (the sweeper catches it if that publish fails)."""
    from alerts.oncall.services.send import page_send

    outcome = page_send(page_id)
    if outcome.status == "pending" and outcome.retry_in_s is not None:
        try:
            page_send_task.apply_async(args=[page_id], countdown=outcome.retry_in_s, retry=False)
        except Exception:
            logger.warning("could not schedule the retry of page %s", page_id)
    return outcome.status
