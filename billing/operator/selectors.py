"""Reads of the platform's billing data (public schema): the price book and contract overrides,
FOCUS imports and the cost pools they made. Lists for pages come back as one Paginator page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum

from billing.operator.models import (
    AllocationRun,
    CostPool,
    FocusImport,
    PriceBookEntry,
    TenantPriceOverride,
)
from billing.pricing.domain import PricePoint, PriceSchedule

PAGE_SIZE = 50


def price_schedule() -> PriceSchedule:
    """The whole price book, indexed for in-process lookups (a few thousand rows)."""
    return PriceSchedule(
        PricePoint(
            provider=e.provider,
            model=e.model,
            token_kind=e.token_kind,
            price_per_mtok=e.price_per_mtok,
            effective_from=e.effective_from,
            entry_id=e.pk,
            tier_start=e.tier_start,
        )
        for e in PriceBookEntry.objects.all()
    )


def price_book_page(*, search: str, provider: str, page: int | str, now: datetime) -> Page:
    """Price book entries whose model or provider contains ``search`` (and of ``provider`` when
    given), by provider, model, token kind, tier and newest first, 50 a page. Each entry carries
    ``superseded`` (a later entry of the same price is in force at ``now``); an entry effective
    after ``now`` is scheduled."""
    newer_in_force = PriceBookEntry.objects.filter(
        provider=OuterRef("provider"),
        model=OuterRef("model"),
        token_kind=OuterRef("token_kind"),
        tier_start=OuterRef("tier_start"),
        effective_from__gt=OuterRef("effective_from"),
        effective_from__lte=now,
    )
    entries = PriceBookEntry.objects.annotate(superseded=Exists(newer_in_force)).order_by(
        "provider", "model", "token_kind", "tier_start", "-effective_from", "pk"
    )
    if search:
        entries = entries.filter(Q(model__icontains=search) | Q(provider__icontains=search))
    if provider:
        entries = entries.filter(provider=provider)
    return Paginator(entries, PAGE_SIZE).get_page(page)


def price_book_providers() -> list[str]:
    return list(
        PriceBookEntry.objects.order_by("provider").values_list("provider", flat=True).distinct()
    )


def price_overrides() -> list[TenantPriceOverride]:
    """Every tenant's contract terms, by tenant, provider, model and newest first."""
    return list(
        TenantPriceOverride.objects.select_related("tenant").order_by(
            "tenant__slug", "provider", "model", "-effective_from", "-pk"
        )
    )


def focus_imports_page(*, page: int | str) -> Page:
    """Imported FOCUS files, newest first, each with its pool count and the periods it covers."""
    imports = FocusImport.objects.annotate(
        pool_count=Count("pools"),
        first_period=Min("pools__period"),
        last_period=Max("pools__period"),
    ).order_by("-imported_at", "-pk")
    return Paginator(imports, PAGE_SIZE).get_page(page)


@dataclass(frozen=True)
class PoolMonth:
    period: date
    pools: int
    billed_cost: Decimal  # USD, the bill's precision
    effective_cost: Decimal
    allocation: str  # none | draft | closed


def cost_pool_months() -> list[PoolMonth]:
    """Cost pools per billing period, newest first, with the period's allocation status."""
    runs = dict(AllocationRun.objects.values_list("period", "status"))
    return [
        PoolMonth(
            period=row["period"],
            pools=row["pools"],
            billed_cost=row["billed"],
            effective_cost=row["effective"],
            allocation=runs.get(row["period"], "none"),
        )
        for row in CostPool.objects.values("period")
        .annotate(pools=Count("id"), billed=Sum("billed_cost"), effective=Sum("effective_cost"))
        .order_by("-period")
    ]


def cost_pools_page(*, period: date | None, page: int | str) -> Page:
    """Cost pools (of one period when given), newest period first, 50 a page."""
    pools = CostPool.objects.select_related("source").order_by(
        "-period", "provider", "service_category", "charge_category", "tag_value", "pk"
    )
    if period is not None:
        pools = pools.filter(period=period)
    return Paginator(pools, PAGE_SIZE).get_page(page)
