"""Celery tasks of runtime (thin: call one service)."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from factory_portal.celery import app
from factory_portal.tenants.fanout import tenants_fan_out
from runtime.services.retention import metrics_retention


@app.task
def metrics_retention_all() -> int:
    """Beat: delete metric rows past retention in the public schema (platform series), then
    enqueue the same in every tenant's schema; returns how many tenants."""
    metrics_retention(now=timezone.now())
    return tenants_fan_out(tenant_metrics_retention)


@app.task
def tenant_metrics_retention() -> tuple[str, dict[str, int]]:
    """Runs in its tenant's schema (tenant-schemas-celery): returns the schema and the rows
    deleted per table."""
    return connection.schema_name, metrics_retention(now=timezone.now())
