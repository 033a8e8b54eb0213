"""Template context shared by every page: the current tenant and the base domain."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    tenant = getattr(connection, "tenant", None)
    is_public = tenant is None or getattr(tenant, "schema_name", "public") == "public"
    return {
        "portal_tenant": None if is_public else tenant,
        "portal_is_operator_console": is_public,
        "portal_base_domain": settings.PORTAL_BASE_DOMAIN,
    }
