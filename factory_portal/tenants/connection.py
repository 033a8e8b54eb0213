"""The database connection typed as what it is: django-tenants' backend (settings.DATABASES).

Only a typing aid: it returns ``django.db.connection`` itself, whose stubs know any backend and
so not the schema and tenant that django-tenants keeps on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from django.db import connection

from factory_portal.periods import zone
from factory_portal.pg import prepared_cursor

if TYPE_CHECKING:
    from django_tenants.postgresql_backend.base import DatabaseWrapper

    from factory_portal.tenants.models import Tenant


def tenant_connection() -> DatabaseWrapper:
    return cast("DatabaseWrapper", connection)


def connection_tenant() -> Tenant:
    """The tenant the connection is set to (settings.TENANT_MODEL is Tenant)."""
    return cast("Tenant", tenant_connection().tenant)


def current_tenant() -> Tenant:
    """The tenant the connection is set to, as its row: under ``schema_context`` django-tenants
    keeps only a stand-in with the schema's name, so the row is read then."""
    from factory_portal.tenants.models import Tenant

    tenant = getattr(tenant_connection(), "tenant", None)
    if isinstance(tenant, Tenant):
        return tenant
    return Tenant.objects.get(schema_name=tenant_connection().schema_name)


def connection_zone() -> ZoneInfo:
    """The time zone the connection's tenant counts its days and months in (UTC outside a
    tenant). Reading usage in a period needs it; writing usage takes ``zone_for_writing``.
    Under ``schema_context`` the connection holds only the schema's name: the zone is read."""
    tenant = getattr(tenant_connection(), "tenant", None)
    name = getattr(tenant, "timezone", None)
    if name is None:
        schema = getattr(tenant, "schema_name", "") or "public"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT timezone FROM public.tenants_tenant WHERE schema_name = %s", [schema]
            )
            row = cursor.fetchone()
        name = row[0] if row else "UTC"
    return zone(name or "UTC")


ZONE_LOCK = "SELECT pg_advisory_xact_lock{kind}(hashtext('tenant-zone:' || %s))"


def zone_lock(schema_name: str, *, exclusive: bool) -> None:
    """Hold, until the transaction ends, the lock that orders a change of the tenant's time zone
    against writes that count by it: writers share it, the change takes it alone."""
    with prepared_cursor() as cursor:
        cursor.execute(ZONE_LOCK.format(kind="" if exclusive else "_shared"), [schema_name])


def zone_for_writing() -> ZoneInfo:
    """The zone of the connection's tenant as committed now, with the shared zone lock held to
    the end of the transaction, so a batch counts every row by one zone and a change of zone
    (which re-counts what is stored) waits for it, or it for the change. Call inside a
    transaction."""
    tenant = getattr(tenant_connection(), "tenant", None)
    schema = getattr(tenant, "schema_name", "")
    if not schema or schema == "public":
        return zone("UTC")
    zone_lock(schema, exclusive=False)
    with prepared_cursor() as cursor:
        cursor.execute(
            "SELECT timezone FROM public.tenants_tenant WHERE schema_name = %s", [schema]
        )
        row = cursor.fetchone()
    return zone(row[0] if row else "UTC")
