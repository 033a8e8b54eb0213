"""Celery tasks of billing: forecast refresh (beat fans out one task per tenant)."""

from __future__ import annotations

from django.utils import timezone
from django_tenants.utils import schema_context

from billing.services import forecasts_refresh
from factory_portal.celery import app
from factory_portal.tenants.selectors import customer_tenants


@app.task
def forecasts_refresh_all() -> int:
    schemas = list(customer_tenants().values_list("schema_name", flat=True))
    for schema in schemas:
        with schema_context(schema):
            forecasts_refresh_tenant.delay()
    return len(schemas)


@app.task
def forecasts_refresh_tenant() -> int:
    """Runs in the enqueuing tenant's schema (tenant-schemas-celery)."""
    return forecasts_refresh(today=timezone.now().date())
