"""Template context shared by every page: the current tenant, what the user may see (for the
navigation), how fresh the tenant's usage data is, the user's unread notifications and the
firing alerts."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from factory_portal import money
from factory_portal.accounts.permissions import capabilities
from notifications.selectors import unread_count


def _freshness() -> datetime | None:
    from usage.selectors import usage_complete_until

    return usage_complete_until()


def _unread(request: HttpRequest, is_public: bool) -> int:
    """Unread notifications of the signed-in tenant user (one query); 0 on the operator console,
    whose schema has no inbox, and for anonymous visitors."""
    user = getattr(request, "user", None)
    if is_public or user is None or not user.is_authenticated:
        return 0
    return unread_count(user)


def _firing(request: HttpRequest) -> int:
    """Firing alerts of the schema (a tenant's, or the platform's on the operator console): one
    indexed count; 0 for anonymous visitors."""
    from alerts.oncall.selectors import firing_count

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return firing_count()


def _separators(tenant: object) -> str:
    """The workspace's decimal and thousands separators as plotly's ``layout.separators``."""
    style = money.NUMBER_FORMATS.get(getattr(tenant, "number_format", ""), None)
    style = style or money.NUMBER_FORMATS[money.DEFAULT_FORMAT]
    return style.decimal + style.thousands


def portal(request: HttpRequest) -> dict[str, object]:
    tenant = getattr(connection, "tenant", None)
    is_public = tenant is None or getattr(tenant, "schema_name", "public") == "public"
    user = getattr(request, "user", None)
    return {
        "portal_tenant": None if is_public else tenant,
        "portal_is_operator_console": is_public,
        "portal_base_domain": settings.PORTAL_BASE_DOMAIN,
        "portal_can": capabilities(user),
        "portal_separators": _separators(tenant),
        # Evaluated only by pages that show it (two indexed queries on the hourly rollups).
        "portal_freshness": _freshness,
        # Lazy: computed once, and only when a page renders it (the navigation badge).
        "portal_unread": SimpleLazyObject(lambda: _unread(request, is_public)),
        "portal_firing": SimpleLazyObject(lambda: _firing(request)),
    }
