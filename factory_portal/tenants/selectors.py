"""Reads of tenants (public schema)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.utils.encoding import iri_to_uri

from factory_portal.tenants.models import SLUG_RE, Tenant


def customer_tenants() -> QuerySet[Tenant]:
    """Every tenant except the public (operator) one."""
    return Tenant.objects.exclude(schema_name="public").order_by("slug")


def tenant_by_slug(slug: str) -> Tenant | None:
    if "\x00" in slug:  # no slug holds NUL, and PostgreSQL refuses it in a query
        return None
    return customer_tenants().filter(slug=slug).first()


def active_tenants_by_slug(slugs: Iterable[str]) -> dict[str, Tenant]:
    """Active customer tenants among ``slugs`` (unknown or suspended ones are absent): how ingest
    routes what a platform key sends. Only slugs go to the database: a tenant named by a client
    may hold anything, NUL included."""
    wanted = {s for s in slugs if re.fullmatch(SLUG_RE, s)}
    return {
        t.slug: t for t in customer_tenants().filter(slug__in=wanted, status=Tenant.Status.ACTIVE)
    }


def tenants_beyond_one_request(slugs: Iterable[str]) -> tuple[set[str], str]:
    """The tenants among ``slugs`` past the first ``PLATFORM_MAX_TENANTS_PER_REQUEST`` (in slug
    order) and the reason to give their items: a platform request writes every tenant's items
    in one transaction, whose locks (each tenant's partitions, indexes and rollups) PostgreSQL's
    shared lock table must hold at once; 250 tenants exhausted it ("out of shared memory", a
    503 that no retry could mend)."""
    ordered = sorted(set(slugs))
    limit = settings.PLATFORM_MAX_TENANTS_PER_REQUEST
    if len(ordered) <= limit:
        return set(), ""
    return set(ordered[limit:]), (
        f"this request names {len(ordered):,} tenants; one platform request stores at most "
        f"{limit:,} tenants' items (in slug order): send the others in another request"
    )


def tenant_url(tenant: Tenant, path: str) -> str:
    """The absolute URL of the portal page ``path`` on ``tenant``'s host (its primary domain; the
    operator console's for the public tenant), for links in e-mails and chat messages. A path
    that is not site-absolute (empty, or already a URL) is returned as it is."""
    if not path or not path.startswith("/"):
        return path
    scheme = "https" if settings.PORTAL_SECURE else "http"
    domain = None if tenant.is_public else tenant.get_primary_domain()
    host = domain.domain if domain else settings.PORTAL_BASE_DOMAIN
    return f"{scheme}://{host}{iri_to_uri(path)}"  # run links keep non-ASCII ids unencoded
