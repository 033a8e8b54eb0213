"""Reads of billed vs estimated AI cost (public schema, and every tenant's schema for estimates).

The bill of a month: per provider and UTC day, the newest import that has charges of that day.
The estimate: the sum over every customer tenant of its hourly LLM rollup per provider, model and
UTC day (``usage.selectors.operator.tenants_estimated_cost``: a few statements for every tenant),
with names normalised as bills' names are. The comparison itself is
``billing.domain.billed.drift_compare``. Amounts are unrounded USD Decimals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Sum

from billing.domain.billed import Drift, Key, drift_compare, model_key
from billing.operator.models import BilledCost, BilledDriftAlert, BilledImport, TrueUp
from factory_portal.periods import next_month
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage.selectors.operator import tenants_estimated_cost


def default_tolerance() -> Decimal:
    return Decimal(settings.BILLED_DRIFT_TOLERANCE_PERCENT)


def billed_costs(period: date) -> dict[Key, Decimal]:
    """What providers billed per (provider, model, UTC day) of the month ``period``."""
    days = BilledCost.objects.filter(day__gte=period, day__lt=next_month(period))
    newest = {
        (row["provider"], row["day"]): row["source"]
        for row in days.values("provider", "day").annotate(source=Max("source_id"))
    }
    billed: dict[Key, Decimal] = defaultdict(Decimal)
    for row in days.values("provider", "model", "day", "source_id").annotate(amount=Sum("amount")):
        if newest[(row["provider"], row["day"])] == row["source_id"]:
            billed[(row["provider"], row["model"], row["day"])] += row["amount"]
    return dict(billed)


@dataclass(frozen=True)
class TenantEstimate:
    tenant: Tenant
    costs: dict[Key, Decimal]  # normalised provider and model, UTC day


def estimates_by_tenant(period: date) -> list[TenantEstimate]:
    """Each customer tenant's estimated AI cost per (provider, model, UTC day) of the month, every
    tenant (suspended ones too: the month's usage decides, not today's status)."""
    tenants = list(customer_tenants())
    by_schema = tenants_estimated_cost(
        [t.schema_name for t in tenants], start=period, end=next_month(period)
    )
    estimates = []
    for tenant in tenants:
        raw = by_schema[tenant.schema_name]
        costs: dict[Key, Decimal] = defaultdict(Decimal)
        for (provider, model, day), amount in raw.items():
            costs[(*model_key(provider, model), day)] += amount
        estimates.append(TenantEstimate(tenant, dict(costs)))
    return estimates


def estimated_costs(estimates: list[TenantEstimate]) -> dict[Key, Decimal]:
    total: dict[Key, Decimal] = defaultdict(Decimal)
    for estimate in estimates:
        for key, amount in estimate.costs.items():
            total[key] += amount
    return dict(total)


def billed_drift(period: date, *, tolerance: Decimal | None = None) -> Drift:
    """Billed against estimated per provider and model for the UTC month ``period``."""
    return drift_compare(
        billed_costs(period),
        estimated_costs(estimates_by_tenant(period)),
        tolerance=default_tolerance() if tolerance is None else tolerance,
    )


def billed_months() -> list[date]:
    """The UTC months some import has charges in, newest first."""
    days = BilledCost.objects.values_list("day", flat=True).distinct()
    return sorted({day.replace(day=1) for day in days}, reverse=True)


def billed_imports(limit: int = 50) -> list[BilledImport]:
    return list(BilledImport.objects.all()[:limit])


def drift_alerts(period: date) -> list[BilledDriftAlert]:
    return list(BilledDriftAlert.objects.filter(period=period))


def trueups(period: date) -> list[TrueUp]:
    return list(
        TrueUp.objects.filter(period=period)
        .prefetch_related("lines__tenant")
        .order_by("provider", "model")
    )
