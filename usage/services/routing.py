"""Platform ingest: one request from the factory carries many tenants' usage.

Each item names its tenant; items are grouped by tenant and each group is stored in its tenant's
schema with that tenant's prices. All groups share one database transaction, so the request is
all or nothing across tenants too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.db import transaction
from django_tenants.utils import schema_context

from factory_portal.tenants.models import Tenant

T = TypeVar("T")
R = TypeVar("R")


def tenants_by_slug(slugs: Iterable[str]) -> dict[str, Tenant]:
    """Active customer tenants among ``slugs`` (unknown or suspended ones are absent)."""
    return {
        t.slug: t
        for t in Tenant.objects.filter(slug__in=set(slugs), status=Tenant.Status.ACTIVE).exclude(
            schema_name="public"
        )
    }


def per_tenant(
    items: Sequence[T],
    tenant_of: Callable[[T], str],
    tenants: dict[str, Tenant],
    store: Callable[[Tenant, list[T]], R],
) -> list[R]:
    """Run ``store`` for each tenant's items inside its schema, all in one transaction."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[tenant_of(item)].append(item)
    results = []
    with transaction.atomic():
        for slug in sorted(groups):
            tenant = tenants[slug]
            with schema_context(tenant.schema_name):
                results.append(store(tenant, groups[slug]))
    return results
