"""Reads of the operator console (public schema, and every tenant's schema for cost per
customer): the price book and contract overrides as listed, FOCUS imports and the cost pools they
made, and each customer's AI and allocated infrastructure cost per month. Lists for pages come
back as one Paginator page. The price schedule the pricer uses is ``billing.pricing.selectors``.

Cost per customer gives the figures of ``billing.selectors.costs.cost_report`` (token cost from
the daily rollups with re-pricing corrections, infrastructure from the tenant's project-level
allocation lines of the month's allocation run, correction lines included), computed for many
tenants and months at once: one query per tenant plus two in the public schema. Amounts are
unrounded USD Decimals; rounding happens at display or export.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum

from billing.domain.allocation import UNALLOCATED, Method
from billing.operator.models import (
    AllocationLine,
    AllocationRule,
    AllocationRun,
    CostPool,
    FocusImport,
    PriceBookEntry,
    TenantPriceOverride,
)
from billing.operator.services.allocation import CURRENT_RULES, allocation_what_if
from factory_portal.money import quantize_cents
from factory_portal.periods import next_month
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from usage.selectors.operator import tenants_models_seen, tenants_monthly_token_cost

PAGE_SIZE = 50
ZERO = Decimal(0)


def price_book_page(
    *, search: str, provider: str, page: int | str, now: datetime, model: str = ""
) -> Page:
    """Price book entries whose model or provider contains ``search`` (and of ``provider``, and
    exactly ``model``, when given), by provider, model, token kind, tier and newest first, 50 a
    page: a model's history. Each entry carries
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
    if model:
        entries = entries.filter(model=model)
    return Paginator(entries, PAGE_SIZE).get_page(page)


TIER_KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class TierPrices:
    """One tier's prices in force, USD per million tokens (None: the model has no such price)."""

    tier_start: int  # 0: the base price; N: requests of more than N input tokens
    prices: dict[str, Decimal | None]  # token kind -> price

    @property
    def input(self) -> Decimal | None:
        return self.prices["input"]

    @property
    def output(self) -> Decimal | None:
        return self.prices["output"]

    @property
    def cache_read(self) -> Decimal | None:
        return self.prices["cache_read"]

    @property
    def cache_write(self) -> Decimal | None:
        return self.prices["cache_write"]


@dataclass(frozen=True)
class ModelPrices:
    """One model's row of the price book: its base prices and higher tiers in force at ``now``,
    when they took effect, and how many later entries are scheduled."""

    provider: str
    model: str
    base: TierPrices
    tiers: list[TierPrices]  # above the base, by threshold
    effective_from: datetime | None  # the newest entry in force
    sources: list[str]
    scheduled: int  # entries effective after now
    entries: int  # every entry of the model, history included


def models_in_use() -> set[tuple[str, str]]:
    """(provider, model) pairs any customer tenant has LLM calls of: a DISTINCT over each
    tenant's daily rollups, as many schemas a statement as the lock budget allows."""
    return tenants_models_seen(list(customer_tenants().values_list("schema_name", flat=True)))


def price_book_models_page(
    *,
    search: str,
    provider: str,
    page: int | str,
    now: datetime,
    in_use: set[tuple[str, str]] | None = None,
) -> Page:
    """The price book one row per provider and model (``ModelPrices``), by provider and model,
    50 a page: models whose name or provider contains ``search``, of ``provider`` when given, and
    among ``in_use`` when given. Three queries: the count, the page's models, their entries."""
    models = PriceBookEntry.objects.all()
    if search:
        models = models.filter(Q(model__icontains=search) | Q(provider__icontains=search))
    if provider:
        models = models.filter(provider=provider)
    if in_use is not None:
        wanted = Q(pk__in=[])
        for p, m in sorted(in_use):
            wanted |= Q(provider=p, model=m)
        models = models.filter(wanted)
    pairs = models.values("provider", "model").distinct().order_by("provider", "model")
    result = Paginator(pairs, PAGE_SIZE).get_page(page)
    keys = [(row["provider"], row["model"]) for row in result.object_list]
    entries: dict[tuple[str, str], list[PriceBookEntry]] = defaultdict(list)
    if keys:
        of_page = Q(pk__in=[])
        for p, m in keys:
            of_page |= Q(provider=p, model=m)
        for entry in PriceBookEntry.objects.filter(of_page).order_by("-effective_from", "-pk"):
            entries[(entry.provider, entry.model)].append(entry)
    result.object_list = [_model_prices(p, m, entries[(p, m)], now) for p, m in keys]
    return result


def _model_prices(
    provider: str, model: str, entries: list[PriceBookEntry], now: datetime
) -> ModelPrices:
    """``entries`` newest first: the first in force per token kind and tier is the price."""
    in_force: dict[tuple[int, str], PriceBookEntry] = {}
    for e in entries:
        if e.effective_from <= now:
            in_force.setdefault((e.tier_start, e.token_kind), e)
    tiers = sorted({tier for tier, _ in in_force} | {0})
    table = [
        TierPrices(
            tier,
            {
                k: (in_force[(tier, k)].price_per_mtok if (tier, k) in in_force else None)
                for k in TIER_KINDS
            },
        )
        for tier in tiers
    ]
    current = list(in_force.values())
    return ModelPrices(
        provider=provider,
        model=model,
        base=table[0],
        tiers=table[1:],
        effective_from=max((e.effective_from for e in current), default=None),
        sources=sorted(
            {
                e.get_source_display() + (f" {e.source_version}" if e.source_version else "")
                for e in current
            }
        ),
        scheduled=sum(e.effective_from > now for e in entries),
        entries=len(entries),
    )


def price_book_providers() -> list[str]:
    return list(
        PriceBookEntry.objects.order_by("provider").values_list("provider", flat=True).distinct()
    )


def price_overrides_page(*, page: int | str) -> Page:
    """Every tenant's contract terms, by tenant, provider, model and newest first, 50 a page (a
    page that is not one gives the nearest)."""
    terms = TenantPriceOverride.objects.select_related("tenant").order_by(
        "tenant__slug", "provider", "model", "-effective_from", "-pk"
    )
    return Paginator(terms, PAGE_SIZE).get_page(page)


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


@dataclass(frozen=True)
class MonthCost:
    ai: Decimal = ZERO  # USD, token cost
    infrastructure: Decimal = ZERO  # USD, allocated shared cost

    @property
    def total(self) -> Decimal:
        return self.ai + self.infrastructure

    def __add__(self, other: MonthCost) -> MonthCost:
        return MonthCost(self.ai + other.ai, self.infrastructure + other.infrastructure)

    def in_cents(self) -> MonthCost:
        """Each figure rounded to the cent, as the customer's own pages show it."""
        return MonthCost(quantize_cents(self.ai), quantize_cents(self.infrastructure))


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
    days: each tenant's own calendar months, in its time zone, as in its finance reports). The
    totals add the customers' figures rounded to the cent as each customer sees them (and is
    billed), so a table's rows sum to its total row; the rounded sum of the exact figures can
    differ from that by a few cents."""
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
    tenants = list(customer_tenants())
    ai_by_schema = tenants_monthly_token_cost(
        [t.schema_name for t in tenants], start=start, end=end
    )
    for tenant in tenants:
        ai = ai_by_schema[tenant.schema_name]
        costs = {m: MonthCost(ai.get(m, ZERO), infra[(tenant.pk, m)]) for m in months}
        customers.append(CustomerCosts(tenant=tenant, months=costs))
        totals = {m: totals[m] + costs[m].in_cents() for m in months}
    return CustomerCostTable(
        months=months,
        customers=customers,
        totals=totals,
        unallocated=unallocated,
        allocation_status=status,
    )


@dataclass(frozen=True)
class DraftStaleness:
    """Why a draft allocation is out of date: its inputs changed after it was computed."""

    changed_at: datetime  # the latest change, UTC
    what: str  # "cost pools", "allocation rules" or both, as a page says it


def draft_staleness(
    run: AllocationRun | None, *, pools_changed_at: datetime | None = None
) -> DraftStaleness | None:
    """``None`` unless ``run`` is a draft and a cost pool of its period was imported, or an
    allocation rule added or changed, after the draft was computed. Derived from the rows' own
    times (nothing stored); ``pools_changed_at`` spares the query when the caller has it. Usage
    arriving late is not counted here: the what-if's "current rules" column shows its effect."""
    if run is None or run.status != AllocationRun.Status.DRAFT:
        return None
    if pools_changed_at is None:
        pools_changed_at = CostPool.objects.filter(period=run.period).aggregate(
            at=Max("created_at")
        )["at"]
    rules_changed_at = AllocationRule.objects.aggregate(at=Max("updated_at"))["at"]
    changed = {
        what: at
        for what, at in (("cost pools", pools_changed_at), ("allocation rules", rules_changed_at))
        if at is not None and at > run.computed_at
    }
    if not changed:
        return None
    return DraftStaleness(changed_at=max(changed.values()), what=" and ".join(changed))


@dataclass(frozen=True)
class MethodAmount:
    method: str
    amount: Decimal  # USD, cents
    difference: Decimal | None  # amount - the draft's, USD to the cent; None without a draft


@dataclass(frozen=True)
class ComparisonRow:
    name: str  # the tenant's name, or "Unallocated"
    draft: Decimal | None  # USD, the draft's (or closed run's) share; None without a run
    methods: list[MethodAmount]
    slug: str = ""  # the tenant's; "" for "Unallocated"


# The what-if's columns, in order, as the page names them.
COMPARISON_LABELS = {
    CURRENT_RULES: "Current rules (a new draft)",
    Method.USAGE: "Usage-based (each pool's usage driver)",
    Method.PROPORTIONAL: "Proportional (by runs)",
    Method.FIXED_VARIABLE: "Fixed + variable (a quarter evenly, the rest by usage)",
}


def allocation_comparison(*, period: date, draft: dict[str, Decimal] | None) -> list[ComparisonRow]:
    """The what-if against the period's run: each tenant (by name, then "Unallocated") with its
    share in ``draft`` (tenant slug -> USD, ``unallocated`` for the rest; ``None``: no run) and
    under each method from the current pools, with the difference to the draft in cents."""
    table = allocation_what_if(period)
    slugs = set(table) | set(draft or {})
    names = dict(Tenant.objects.filter(slug__in=slugs).values_list("slug", "name"))
    rows = []
    for slug in slugs:
        drafted = None if draft is None else draft.get(slug, ZERO)
        amounts = table.get(slug, {})
        methods = [
            MethodAmount(
                method=label,
                amount=quantize_cents(amounts.get(key, ZERO)),
                difference=(
                    None if drafted is None else quantize_cents(amounts.get(key, ZERO) - drafted)
                ),
            )
            for key, label in COMPARISON_LABELS.items()
        ]
        name = "Unallocated" if slug == UNALLOCATED else names.get(slug, slug)
        own = "" if slug == UNALLOCATED else slug
        rows.append(ComparisonRow(name=name, draft=drafted, methods=methods, slug=own))
    return sorted(rows, key=lambda r: (r.name == "Unallocated", r.name.casefold()))


def run_tenant_totals(run: AllocationRun | None) -> dict[str, Decimal]:
    """The run's tenant-level lines summed per tenant slug (``unallocated`` for the rest), USD,
    the run's own lines and the corrections it carries."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    if run is None:
        return totals
    for row in (
        AllocationLine.objects.filter(run=run, level="tenant")
        .values("tenant__slug")
        .annotate(amount=Sum("amount"))
    ):
        totals[row["tenant__slug"] or UNALLOCATED] += row["amount"]
    return dict(totals)
