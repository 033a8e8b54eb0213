"""Operator console pages (public schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required, user_passes_test
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.periods import month_start
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage import selectors as usage_selectors


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    domain: str
    month_cost: Decimal
    month_runs: int
    active_runs: int
    complete_until: datetime | None


def tenant_summaries(*, now: datetime) -> list[TenantSummary]:
    summaries = []
    for tenant in customer_tenants().prefetch_related("domains"):
        start = month_start(now, tenant.timezone)
        with schema_context(tenant.schema_name):
            tokens = usage_selectors.token_totals(start=start, end=now)
            counts = usage_selectors.run_status_counts(start=start, end=now)
            active = sum(usage_selectors.active_run_counts().values())
            complete_until = usage_selectors.usage_complete_until()
        domains = list(tenant.domains.all())
        summaries.append(
            TenantSummary(
                tenant=tenant,
                domain=next((d.domain for d in domains if d.is_primary), ""),
                month_cost=tokens.cost,
                month_runs=sum(counts.values()),
                active_runs=active,
                complete_until=complete_until,
            )
        )
    return summaries


def _is_operator(user: object) -> bool:
    return getattr(user, "role", None) == Role.OPERATOR


@login_required
@user_passes_test(_is_operator)
def console(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    summaries = tenant_summaries(now=now)
    return render(
        request,
        "tenants/console.html",
        {
            "summaries": summaries,
            "now": now,
            "total_cost": sum((s.month_cost for s in summaries), Decimal(0)),
        },
    )
