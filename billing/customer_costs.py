"""Cost per customer per month for the operator: each tenant's AI (token) cost and its allocated
shared infrastructure (selectors; visits every tenant's schema, reads the public allocation).

The figures are those of ``billing.costs.cost_report`` (token cost from the daily rollups with
re-pricing corrections, infrastructure from the tenant's project-level allocation lines of the
month's allocation run, correction lines included), computed for many tenants and months at
once: one query per tenant plus two in the public schema. Amounts are unrounded USD Decimals;
rounding happens at display or export.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django_tenants.utils import schema_context

from billing.operator.models import AllocationLine, AllocationRun
from factory_portal.periods import month_of, next_month
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage import selectors as usage_selectors

ZERO = Decimal(0)


@dataclass(frozen=True)
class MonthCost:
    ai: Decimal = ZERO  # USD, token cost
    infrastructure: Decimal = ZERO  # USD, allocated shared cost

    @property
    def total(self) -> Decimal:
        return self.ai + self.infrastructure

    def __add__(self, other: MonthCost) -> MonthCost:
        return MonthCost(self.ai + other.ai, self.infrastructure + other.infrastructure)


@dataclass(frozen=True)
class CustomerCosts:
    tenant: Tenant
    months: dict[date, MonthCost]  # every requested month is present

    def month(self, period: date) -> MonthCost:
        return self.months[period]


@dataclass(frozen=True)
class CustomerCostTable:
    months: list[date]  # oldest first, first days of months
    customers: list[CustomerCosts]
    totals: dict[date, MonthCost]
    unallocated: dict[date, Decimal]  # shared cost of the month nobody had usage for
    allocation_status: dict[date, str] = field(default_factory=dict)  # none | draft | closed


def customer_cost_table(*, months: list[date]) -> CustomerCostTable:
    """AI and allocated infrastructure cost per customer for each month in ``months`` (first
    days, UTC calendar months as in the finance reports)."""
    if not months:
        return CustomerCostTable(months=[], customers=[], totals={}, unallocated={})
    months = sorted(months)
    start, end = months[0], next_month(months[-1])
    infra: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    unallocated: dict[date, Decimal] = dict.fromkeys(months, ZERO)
    for row in (
        AllocationLine.objects.filter(run__period__in=months)
        .filter(Q(level="project", tenant__isnull=False) | Q(level="tenant", tenant__isnull=True))
        .values("tenant_id", "run__period")
        .annotate(amount=Sum("amount"))
    ):
        if row["tenant_id"] is None:
            unallocated[row["run__period"]] += row["amount"]
        else:
            infra[(row["tenant_id"], row["run__period"])] += row["amount"]
    status = dict.fromkeys(months, "none")
    status.update(AllocationRun.objects.filter(period__in=months).values_list("period", "status"))

    customers = []
    totals = dict.fromkeys(months, MonthCost())
    for tenant in customer_tenants():
        ai: dict[date, Decimal] = dict.fromkeys(months, ZERO)
        with schema_context(tenant.schema_name):
            daily = usage_selectors.daily_token_cost(start=start, end=end - timedelta(days=1))
        for day, cost in daily.items():
            if (month := month_of(day)) in ai:
                ai[month] += cost
        costs = {m: MonthCost(ai[m], infra[(tenant.pk, m)]) for m in months}
        customers.append(CustomerCosts(tenant=tenant, months=costs))
        totals = {m: totals[m] + costs[m] for m in months}
    return CustomerCostTable(
        months=months,
        customers=customers,
        totals=totals,
        unallocated=unallocated,
        allocation_status=status,
    )
