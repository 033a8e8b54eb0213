"""The database connection typed as what it is: django-tenants' backend (settings.DATABASES).

Only a typing aid: it returns ``django.db.connection`` itself, whose stubs know any backend and
so not the schema and tenant that django-tenants keeps on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.db import connection

if TYPE_CHECKING:
    from django_tenants.postgresql_backend.base import DatabaseWrapper

    from factory_portal.tenants.models import Tenant


def tenant_connection() -> DatabaseWrapper:
    return cast("DatabaseWrapper", connection)


def connection_tenant() -> Tenant:
    """The tenant the connection is set to (settings.TENANT_MODEL is Tenant)."""
    return cast("Tenant", tenant_connection().tenant)
