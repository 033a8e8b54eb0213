"""The operator console's per-tenant summaries: month-to-date cost, runs and data freshness.

They visit each tenant's schema in turn with a fixed number of queries per tenant and read usage
only through ``usage.selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django_tenants.utils import schema_context

from billing.selectors.periods import month_cost
from factory_portal.periods import local_date, month_of, zone
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage import selectors as usage_selectors
from usage.selectors.partitions import PartitionMonth, partition_months

# Usage older than this, for a tenant that has sent some, is flagged as stale on the health page:
# the factory reports continuously, so an hour of silence means ingest (or the factory) stopped.
STALE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    domain: str
    month_cost: Decimal  # USD, AI (token) cost month to date, unrounded
    month_runs: int
    active_runs: int
    complete_until: datetime | None


def tenant_summaries(*, now: datetime) -> list[TenantSummary]:
    """Each customer's month-to-date AI cost (in its own timezone's month), runs and freshness."""
    summaries = []
    for tenant in customer_tenants().prefetch_related("domains"):
        today = local_date(now, zone(tenant.timezone))
        with schema_context(tenant.schema_name):
            cost = month_cost(tenant=tenant, month=today)
            counts = usage_selectors.run_status_counts(start=month_of(today), end=today)
            active = sum(usage_selectors.active_run_counts().values())
            complete_until = usage_selectors.usage_complete_until()
        domains = list(tenant.domains.all())
        summaries.append(
            TenantSummary(
                tenant=tenant,
                domain=next((d.domain for d in domains if d.is_primary), ""),
                month_cost=cost.ai,
                month_runs=sum(counts.values()),
                active_runs=active,
                complete_until=complete_until,
            )
        )
    return summaries


@dataclass(frozen=True)
class TenantFreshness:
    tenant: Tenant
    complete_until: datetime | None  # newest usage stored (read live from the rollups)
    recorded_until: datetime | None  # what the periodic freshness task last recorded
    age: timedelta | None

    @property
    def stale(self) -> bool:
        return self.age is not None and self.age > STALE_AFTER


def tenant_freshness(*, now: datetime) -> list[TenantFreshness]:
    """How far each customer's usage data reaches, and how old that is."""
    result = []
    for tenant in customer_tenants():
        with schema_context(tenant.schema_name):
            until = usage_selectors.usage_complete_until()
        result.append(
            TenantFreshness(
                tenant=tenant,
                complete_until=until,
                recorded_until=tenant.usage_complete_until,
                age=None if until is None else max(now - until, timedelta(0)),
            )
        )
    return result


def tenant_partition_months(tenant: Tenant) -> list[PartitionMonth]:
    """The raw event partitions of ``tenant`` by month (its retention page), read in its schema."""
    with schema_context(tenant.schema_name):
        return partition_months()
