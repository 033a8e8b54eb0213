"""Celery tasks of usage (thin: call one service)."""

from __future__ import annotations

from factory_portal.celery import app
from usage.services.otlp import pending_spans_expire as pending_spans_expire_service


@app.task
def pending_spans_expire() -> int:
    """Beat: delete OTLP spans that waited too long for their run span (public schema)."""
    return pending_spans_expire_service()
