"""Celery tasks of usage (thin: call one service)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from factory_portal import periods
from factory_portal.celery import app
from factory_portal.tenants.connection import connection_zone
from factory_portal.tenants.fanout import tenants_fan_out
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_usage_complete_record
from usage.selectors import usage_complete_until
from usage.services.otlp import pending_spans_expire as pending_spans_expire_service
from usage.services.partitions import partitions_maintain
from usage.services.stripes import stripes_fold


@app.task
def pending_spans_expire() -> int:
    """Beat: delete OTLP spans that waited too long for their run span (public schema)."""
    return pending_spans_expire_service()


@app.task
def tenants_freshness_refresh() -> int:
    """Beat: record how far each tenant's usage data reaches (one task per tenant)."""
    return tenants_fan_out(tenant_freshness_refresh)


@app.task
def tenant_freshness_refresh() -> str:
    """Runs in its tenant's schema (tenant-schemas-celery): store the tenant's newest usage
    timestamp on its Tenant row; returns the schema."""
    schema = connection.schema_name
    tenant_usage_complete_record(schema_name=schema, until=usage_complete_until())
    return schema


@app.task
def partitions_maintain_all() -> int:
    """Beat (daily): maintain each tenant's raw event partitions (one task per tenant)."""
    return tenants_fan_out(partitions_maintain_tenant)


@app.task
def partitions_maintain_tenant() -> list[str]:
    """Runs in its tenant's schema: months ahead created, expired months detached and dropped;
    returns the partitions dropped."""
    return partitions_maintain(tenant=Tenant.objects.get(schema_name=connection.schema_name))


@app.task
def rollup_stripes_fold_all() -> int:
    """Beat (daily): fold the striped rollup rows of past days into stripe 0 (one task per
    active tenant: idle ones write no new stripes)."""
    return tenants_fan_out(rollup_stripes_fold_tenant)


@app.task
def rollup_stripes_fold_tenant() -> dict[str, object]:
    """Runs in its tenant's schema: the ``ROLLUP_STRIPES_FOLD_DAYS`` days before yesterday (the
    tenant's days) folded; a day a writer kept from the fold is tried again the next days."""
    before = periods.local_date(timezone.now(), connection_zone()) - timedelta(days=1)
    since = before - timedelta(days=settings.ROLLUP_STRIPES_FOLD_DAYS)
    result = stripes_fold(since=since, before=before)
    return {
        "schema": connection.schema_name,
        "ledger_rows": result.ledger_rows,
        "step_rows": result.step_rows,
        "complete": result.complete,
    }
