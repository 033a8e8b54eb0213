"""What the cost pages show of a month's cost report, kept ready in the cache.

A cost report (``billing.selectors.costs.cost_report``) is exact to the cent and reads the run
ledger (a row per run and day), so it grows with runs, not calls. Pages need only its totals,
groups, the cost-per-run distribution and each run's infrastructure share, so those are
summarised and cached (Redis in production), keyed by tenant, time zone and month.

A cached summary is served only while the month's fingerprint (its rollups, its run ledger and
its allocation run) is unchanged: figures are live; the cache only saves recomputing what did
not change. Celery beat refreshes the current month of every tenant every five minutes, so a
page rarely waits for the computation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import Count, Max
from django.utils import timezone

from billing.domain import allocation
from billing.operator.models import AllocationLine, AllocationRun
from billing.selectors.costs import CostReport, UnitCost, cost_report, range_report
from factory_portal.periods import local_date, month_of, month_text, next_month
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors
from usage.selectors import RunStatus

logger = logging.getLogger(__name__)
DISTRIBUTION_BINS = 40
ZERO = Decimal(0)


@dataclass(frozen=True)
class LineView:
    """One allocation line of the tenant, as the page explains it."""

    pool: str
    method: str
    driver: str
    driver_quantity: Decimal | None
    ratio: Decimal | None
    part: str
    amount: Decimal
    corrects_period: date | None

    @property
    def method_label(self) -> str:
        return allocation.method_label(self.method)

    @property
    def driver_label(self) -> str:
        return allocation.driver_label(self.driver)

    @property
    def quantity_unit(self) -> str:
        return allocation.driver_unit(self.driver)

    @property
    def part_label(self) -> str:
        return allocation.part_label(self.part)


@dataclass(frozen=True)
class CostSummary:
    period: date
    computed_at: datetime
    fingerprint: tuple[object, ...]
    allocation_status: str
    token_cost: Decimal
    infra_cost: Decimal
    waste: dict[str, Decimal]
    # Runs grouped, each group's total to the cent, with "(outside runs)" for cost that belongs
    # to no run: the groups add up exactly to the month's total to the cent.
    by_template: list[tuple[str, UnitCost]]
    by_run_type: list[tuple[str, UnitCost]]
    run_count: int  # runs that used something in the month
    calls: int
    unpriced_calls: int
    # Cost per run: (bin start, bin end, runs) for DISTRIBUTION_BINS equal bins.
    distribution: list[tuple[Decimal, Decimal, int]]
    lines: list[LineView]
    run_infra: dict[str, Decimal]  # run id -> its share of its project's infrastructure

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.infra_cost


def summary_month(now: datetime, zone: ZoneInfo) -> date:
    """The month the costs page opens on, and so the one the beat keeps warm: the tenant's
    month of ``now`` (in its time zone ``zone``)."""
    return month_of(local_date(now, zone))


def _key(tenant: Tenant, period: date) -> str:
    return f"cost-summary:v2:{tenant.schema_name}:{tenant.timezone}:{month_text(period)}"


def month_fingerprint(period: date) -> tuple[object, ...]:
    """Cheap aggregates of the month's rollups, run ledger and allocation run: they change
    whenever anything the cost report reads changes (new or corrected calls, runs, jobs,
    infrastructure usage, a re-run allocation)."""
    rollups = usage_selectors.rollups_fingerprint(start=period, end=next_month(period))
    allocation = (
        AllocationRun.objects.filter(period=period)
        .order_by("-pk")
        .values_list("pk", "status", "computed_at")  # a re-run draft keeps its pk
        .first()
    )
    # A closed month's corrections are added to this month's run without recomputing it (its
    # computed_at says when its draft was, for the staleness warning): its newest line and
    # their count change then (the tenant's costs page kept the figure from before them).
    lines = (
        AllocationLine.objects.filter(run_id=allocation[0]).aggregate(n=Count("pk"), last=Max("pk"))
        if allocation is not None
        else None
    )
    return (*rollups, allocation, lines and (lines["n"], lines["last"]))


OUTSIDE_RUNS = "(outside runs)"


def groups_to_cents(report: CostReport, attribute: str) -> list[tuple[str, UnitCost]]:
    """The report's runs grouped by ``attribute`` (``template`` or ``run_type``), plus the cost
    outside runs, each total the sum of its runs' cents as the runs sheet of the Excel export
    rounds them, so the rows add up exactly to the month's total to the cent and each equals
    the sheet's rows of that group."""
    per_run, outside_ai, outside_infra = report.in_cents()
    groups: dict[str, UnitCost] = {}
    for run, (ai, infra) in zip(report.runs, per_run, strict=True):
        group = groups.setdefault(getattr(run, attribute) or "(none)", UnitCost())
        group.runs += 1
        group.succeeded += run.status == RunStatus.SUCCEEDED
        group.total += ai + infra
    rows = sorted(groups.items())
    if outside_ai or outside_infra:
        rows.append((OUTSIDE_RUNS, UnitCost(total=outside_ai + outside_infra)))
    return rows


def summarize(report: CostReport, *, fingerprint: tuple[object, ...], now: datetime) -> CostSummary:
    totals = sorted(run.total for run in report.runs)
    return CostSummary(
        period=report.period,
        computed_at=now,
        fingerprint=fingerprint,
        allocation_status=report.allocation_status,
        token_cost=report.token_cost,
        infra_cost=report.infra_cost,
        waste=report.waste,
        by_template=groups_to_cents(report, "template"),
        by_run_type=groups_to_cents(report, "run_type"),
        run_count=len(report.runs),
        calls=report.calls,
        unpriced_calls=sum(run.unpriced_calls for run in report.runs),
        distribution=distribution(totals),
        lines=[
            LineView(
                pool=line.pool.name,
                method=line.method,
                driver=line.driver,
                driver_quantity=line.driver_quantity,
                ratio=line.ratio,
                part=line.part,
                amount=line.amount,
                corrects_period=line.corrects_period,
            )
            for line in report.lines
            if line.level == "tenant"
        ],
        run_infra={run.run_id: run.infra_cost for run in report.runs if run.infra_cost},
    )


def distribution(
    totals: list[Decimal], bins: int = DISTRIBUTION_BINS
) -> list[tuple[Decimal, Decimal, int]]:
    """Equal-width bins over sorted ``totals`` (Decimal edges, exact counts)."""
    if not totals:
        return []
    low, high = totals[0], totals[-1]
    if low == high:
        return [(low, high, len(totals))]
    width = (high - low) / bins
    counts = [0] * bins
    for value in totals:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [(low + width * i, low + width * (i + 1), counts[i]) for i in range(bins)]


def cost_summary(
    *, tenant: Tenant, period: date, now: datetime | None = None, refresh: bool = False
) -> CostSummary:
    """The summary of ``period`` for ``tenant`` (current schema): from the cache while it is
    still right (same fingerprint), else computed and cached."""
    now = now or timezone.now()
    key = _key(tenant, period)
    fingerprint = month_fingerprint(period)
    cached = None if refresh else _cache_get(key)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    summary = summarize(cost_report(tenant=tenant, period=period), fingerprint=fingerprint, now=now)
    try:
        cache.set(key, summary, timeout=int(timedelta(days=40).total_seconds()))
    except Exception:  # a cache outage costs time, never the page
        logger.warning("cost summary not cached (cache unavailable)", exc_info=True)
    return summary


def range_summary(
    *, tenant: Tenant, start: date, end: date, now: datetime | None = None
) -> CostSummary:
    """The summary of the tenant's days ``start <= day < end`` when they are not one calendar
    month: AI cost only (infrastructure is allocated per month). Cached as months are, while the
    range's rollups and ledger are unchanged (``rollups_fingerprint``); beat keeps the presets
    warm (``RANGE_PRESETS_WARM``), a custom range is computed on its first view."""
    now = now or timezone.now()
    key = f"{_key(tenant, start)}:{start}:{end}"
    fingerprint = usage_selectors.rollups_fingerprint(start=start, end=end)
    cached = _cache_get(key)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    summary = summarize(
        range_report(tenant=tenant, start=start, end=end), fingerprint=fingerprint, now=now
    )
    try:
        cache.set(key, summary, timeout=int(timedelta(days=2).total_seconds()))
    except Exception:  # a cache outage costs time, never the page
        logger.warning("range cost summary not cached (cache unavailable)", exc_info=True)
    return summary


def _cache_get(key: str) -> CostSummary | None:
    try:
        return cache.get(key)
    except Exception:
        logger.warning("cost summary cache unavailable; computing", exc_info=True)
        return None
