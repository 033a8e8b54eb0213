"""Periodic tenant housekeeping (Celery beat).

``tenants_freshness_refresh`` runs in the public schema and fans out one task per tenant; each
``tenant_freshness_refresh`` runs inside its tenant's schema (carried by tenant-schemas-celery)
and records how far that tenant's usage data reaches.
"""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import schema_context

from factory_portal.celery import app
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage.selectors import usage_complete_until


@app.task
def tenants_freshness_refresh() -> int:
    schemas = list(customer_tenants().values_list("schema_name", flat=True))
    for schema in schemas:
        with schema_context(schema):
            tenant_freshness_refresh.delay()
    return len(schemas)


@app.task
def tenant_freshness_refresh() -> str:
    """Store the current tenant's newest usage timestamp on its Tenant row; returns the schema."""
    schema = connection.schema_name
    until = usage_complete_until()
    Tenant.objects.filter(schema_name=schema).update(usage_complete_until=until)
    return schema
