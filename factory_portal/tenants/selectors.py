"""Reads of tenants (public schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from factory_portal.tenants.models import Tenant


def customer_tenants() -> QuerySet[Tenant]:
    """Every tenant except the public (operator) one."""
    return Tenant.objects.exclude(schema_name="public").order_by("slug")


def tenant_by_slug(slug: str) -> Tenant | None:
    return customer_tenants().filter(slug=slug).first()
