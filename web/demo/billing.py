"""Demo billing: infrastructure bills as cost pools, allocation (past months closed), budgets,
forecasts, acme's prepaid commitment and a run budget with a run over it, so the operator
console and tenant pages have money to show."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

from django_tenants.utils import schema_context

from billing.models import Budget, CostForecast, RunBudget
from billing.operator.models import AllocationRule, Commitment, CostPool
from billing.operator.services.allocation import allocation_run
from billing.operator.services.commitments import commitment_create
from billing.selectors import guard as guard_selectors
from billing.selectors.commitments import covered_spend
from billing.services import budget_set, forecasts_refresh, run_budget_set, run_guards_refresh
from factory_portal.money import quantize_cents
from factory_portal.periods import (
    local_date,
    month_last_day,
    month_of,
    month_text,
    next_month,
    previous_month,
    zone,
)
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors

# Monthly bills of the shared platform (USD): compute, storage, network, control plane.
BILLS = (
    ("AWS", "Compute", "Amazon EC2", Decimal("1840")),
    ("AWS", "Storage", "Amazon S3", Decimal("215")),
    ("AWS", "Networking", "AWS Data Transfer", Decimal("132")),
    ("AWS", "Management and Governance", "Control plane (EKS)", Decimal("1200")),
)
COMMITTED_TENANT = "acme"  # has a prepaid commitment for the current quarter


def demo_billing(*, seed: int, now: datetime, months: int, tenants: list[Tenant]) -> list[str]:
    """Pools for the last ``months`` months (each month's bill varies a little); complete
    months are allocated and closed, the current one is a draft. Returns progress lines."""
    rng = random.Random(f"{seed}:billing")
    lines = []
    if not AllocationRule.objects.exists():
        AllocationRule.objects.create(
            name="control plane: 30% fixed by contract, rest by tokens",
            service_category="Management and Governance",
            method="fixed_variable",
            driver="tokens",
            fixed_fraction=Decimal("0.3"),
            fixed_split="weights",
        )
    current = month_of(now.date())
    period = current
    for _ in range(months - 1):
        period = previous_month(period)
    while period <= current:
        if not CostPool.objects.filter(period=period).exists():
            CostPool.objects.bulk_create(
                [
                    CostPool(
                        period=period,
                        name=service,
                        provider=provider,
                        service_category=category,
                        charge_category="Usage",
                        currency="USD",
                        billed_cost=amount,
                        list_cost=amount,
                        effective_cost=quantize_cents(amount * Decimal(rng.uniform(0.85, 1.05))),
                        rows=1,
                    )
                    for provider, category, service, amount in BILLS
                ]
            )
        outcome = allocation_run(period=period, close=period < current)
        lines.append(
            f"{month_text(period)}: allocated {outcome.allocated:,.2f} USD ({outcome.run.status})"
        )
        period = next_month(period)
    for tenant in tenants:
        with schema_context(tenant.schema_name):
            if not Budget.objects.exists():
                last_month = sum(
                    usage_selectors.token_cost_by_project(
                        start=previous_month(current),
                        end=current,
                    ).values(),
                    Decimal(0),
                )
                budget_set(
                    amount=max(Decimal(100), (last_month * Decimal("1.1")).quantize(Decimal(1)))
                )
            forecasts = forecasts_refresh(today=local_date(now, zone(tenant.timezone)))
            if tenant.slug == COMMITTED_TENANT:
                lines += demo_commitments(tenant=tenant, now=now)
            guarded = demo_run_budget()
        lines.append(f"{tenant.slug}: budget set, {forecasts} forecasts; {guarded}")
    return lines


def demo_commitments(*, tenant: Tenant, now: datetime) -> list[str]:
    """A launch credit and a prepaid commitment on AI cost for the tenant's current quarter
    (tenant's schema): the credit used up first, the commitment partly consumed and sized so that
    the forecast runs it out about halfway through the rest of the quarter. (AI only: a month's
    allocated infrastructure counts on its last day, and a draft of this month's allocation made
    after seeding would use a total commitment up at once.)"""
    if Commitment.objects.filter(tenant=tenant).exists():
        return []
    today = local_date(now, zone(tenant.timezone))
    first = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    last = month_last_day(date(first.year, first.month + 2, 1))
    spend = covered_spend(tenant=tenant, start=first, end=today)
    to_date = sum((d.ai for d in spend.values()), Decimal(0))
    forecast = CostForecast.objects.filter(project="").first()
    rest = sum(
        (r.mean for r in (forecast.days if forecast else []) if today < r.day <= last), Decimal(0)
    )
    credit = max(Decimal(100), (to_date * Decimal("0.2")).quantize(Decimal(1)))
    amount = max(Decimal(500), (to_date - credit + rest / 2).quantize(Decimal(1)))
    commitment_create(
        tenant=tenant,
        name="Launch credit",
        kind=Commitment.Kind.CREDIT,
        covers=Commitment.Covers.AI,
        amount=credit,
        currency=tenant.currency,
        start_date=first,
        end_date=last,
        created_by="demo",
    )
    commitment_create(
        tenant=tenant,
        name=f"Q{(first.month - 1) // 3 + 1} {first.year} prepaid",
        covers=Commitment.Covers.AI,
        amount=amount,
        currency=tenant.currency,
        start_date=first,
        end_date=last,
        created_by="demo",
    )
    return [f"{tenant.slug}: credit {credit} and prepaid commitment {amount} {tenant.currency}"]


def demo_run_budget() -> str:
    """A run budget on the template of the costliest running run, set just under that run's
    projected total, so the active runs page shows one run over budget (and the alert went out).
    Returns a progress line."""
    if RunBudget.objects.exists():
        return "run budget kept"
    running = [r for r in usage_selectors.active_runs(limit=200) if r.template_recipe_id]
    costliest = max(running, key=lambda r: r.cost_so_far, default=None)
    answer = guard_selectors.run_guard(costliest.run_id) if costliest else None
    if answer is None or answer.evaluation.projected_total < Decimal("0.10"):
        return "no running run to guard"
    amount = (answer.evaluation.projected_total * Decimal("0.9")).quantize(Decimal("0.01"))
    run_budget_set(template=answer.template, amount=amount, warn_percent=80)
    guards = run_guards_refresh()
    return f"run budget {amount} USD on template {answer.template} ({guards} runs guarded)"
