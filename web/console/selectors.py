"""The operator console's per-tenant summaries: month-to-date cost, runs and data freshness.

A page of tenants (50) is read in two statements across their schemas
(``usage.selectors.operator``, within its lock budget), never one schema after the other: the
console's first page costs the same at 10 tenants and at 10,000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F, Q, QuerySet
from django_tenants.utils import schema_context

from factory_portal.periods import local_date, month_of, zone
from factory_portal.tenants.models import Domain, Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage.domain.retention import expired_months
from usage.selectors.operator import TenantPeriod, tenants_figures
from usage.selectors.partitions import partition_months

# Usage older than this, for a tenant that has sent some, is flagged as stale on the health page:
# the factory reports continuously, so an hour of silence means ingest (or the factory) stopped.
STALE_AFTER = timedelta(hours=1)


CONSOLE_PAGE_SIZE = 50


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    domain: str
    month_cost: Decimal  # USD, AI (token) cost month to date, unrounded
    month_runs: int
    active_runs: int
    complete_until: datetime | None


def tenants_search(query: str = "") -> QuerySet[Tenant]:
    """Customer tenants whose slug or name contains ``query`` (any case), in slug order: the
    console lists them a page at a time (ILIKE over the public table; fine at 10,000 rows)."""
    tenants = customer_tenants()
    query = query.strip()
    if query:
        tenants = tenants.filter(Q(slug__icontains=query) | Q(name__icontains=query))
    return tenants


def tenant_summaries(
    *, now: datetime, tenants: Iterable[Tenant] | None = None
) -> list[TenantSummary]:
    """Each of ``tenants``' (a page of them; every customer by default) month-to-date AI cost (in
    its own timezone's month), runs and freshness: a statement for up to 37 of them
    (``usage.selectors.operator``), not queries per tenant."""
    chosen = list(customer_tenants() if tenants is None else tenants)
    domains: dict[int, str] = dict(
        Domain.objects.filter(tenant__in=chosen, is_primary=True).values_list("tenant_id", "domain")
    )
    wanted = []
    for tenant in chosen:
        today = local_date(now, zone(tenant.timezone))
        wanted.append(TenantPeriod(tenant.schema_name, month_of(today), today))
    figures = tenants_figures(wanted)
    return [
        TenantSummary(
            tenant=tenant,
            domain=domains.get(tenant.pk, ""),
            month_cost=figures[tenant.schema_name].month_cost,
            month_runs=figures[tenant.schema_name].month_runs,
            active_runs=figures[tenant.schema_name].active_runs,
            complete_until=figures[tenant.schema_name].complete_until,
        )
        for tenant in chosen
    ]


@dataclass(frozen=True)
class TenantFreshness:
    tenant: Tenant
    complete_until: datetime | None  # newest usage stored (read live from the rollups)
    recorded_until: datetime | None  # what the periodic freshness task last recorded
    age: timedelta | None

    @property
    def stale(self) -> bool:
        return self.age is not None and self.age > STALE_AFTER


# The health page lists at most this many tenants: the stalest by the recorded figure.
HEALTH_TENANTS_SHOWN = 50


def tenant_freshness(*, now: datetime, limit: int = HEALTH_TENANTS_SHOWN) -> list[TenantFreshness]:
    """How far the customers' usage data reaches, and how old that is: the ``limit`` stalest by
    what the freshness task recorded (never-recorded first), each read live
    (``usage.selectors.operator``)."""
    tenants = list(
        customer_tenants().order_by(F("usage_complete_until").asc(nulls_first=True), "slug")[:limit]
    )
    figures = tenants_figures(
        [TenantPeriod(t.schema_name, month_of(now.date()), now.date()) for t in tenants]
    )
    result = []
    for tenant in tenants:
        until = figures[tenant.schema_name].complete_until
        result.append(
            TenantFreshness(
                tenant=tenant,
                complete_until=until,
                recorded_until=tenant.usage_complete_until,
                age=None if until is None else max(now - until, timedelta(0)),
            )
        )
    return result


@dataclass(frozen=True)
class RetentionMonth:
    """A month of a tenant's raw event partitions (both tables) on its retention page."""

    month: date | None  # None: the DEFAULT partition
    rows_estimate: int | None  # None: not analysed yet
    size_bytes: int
    dropped: bool  # past the tenant's retention: the next partition maintenance drops it


def tenant_retention_months(tenant: Tenant, *, now: datetime) -> list[RetentionMonth]:
    """The raw event partitions of ``tenant`` by month, newest first, read in its schema, each
    saying whether its current retention drops it at the next maintenance (the rule the
    maintenance applies, ``usage.domain.retention``)."""
    with schema_context(tenant.schema_name):
        months = partition_months()
    expired = set(
        expired_months(
            [m.month for m in months if m.month is not None],
            retention_months=tenant.raw_retention_months,
            now=now,
            tz=zone(tenant.timezone),
        )
    )
    return [
        RetentionMonth(m.month, m.rows_estimate, m.size_bytes, m.month in expired) for m in months
    ]
