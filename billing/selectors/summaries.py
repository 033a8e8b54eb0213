"""What the cost pages show of a month's cost report, kept ready in the cache.

A cost report (``billing.selectors.costs.cost_report``) is exact to the cent but reads a month of
raw usage per run: seconds for a tenant with a million calls a month. Pages need only its totals,
groups, the cost-per-run distribution and each run's infrastructure share, so those are
summarised once and cached (Redis in production), keyed by tenant and month.

A cached summary is served while the month's rollup fingerprint (calls, cost, runs and
infrastructure quantities of the month, and the allocation run) is unchanged, and in any case
for ``MAX_AGE`` after it was computed, so a tenant ingesting all the time gets figures at most
five minutes old, with the time they were computed on the page. Celery beat refreshes the
current month of every tenant every five minutes, so pages do not wait for the computation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from billing.operator.models import AllocationRun
from billing.selectors.costs import CostReport, UnitCost, cost_report
from factory_portal.periods import month_of, month_text, next_month
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors

logger = logging.getLogger(__name__)
MAX_AGE = timedelta(minutes=5)
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


@dataclass(frozen=True)
class CostSummary:
    period: date
    computed_at: datetime
    fingerprint: tuple[object, ...]
    allocation_status: str
    token_cost: Decimal
    infra_cost: Decimal
    waste: dict[str, Decimal]
    by_template: list[tuple[str, UnitCost]]
    by_run_type: list[tuple[str, UnitCost]]
    run_count: int
    # Cost per run: (bin start, bin end, runs) for DISTRIBUTION_BINS equal bins.
    distribution: list[tuple[Decimal, Decimal, int]]
    lines: list[LineView]
    run_infra: dict[str, Decimal]  # run id -> its share of its project's infrastructure

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.infra_cost


def summary_month(now: datetime) -> date:
    """The month the costs page opens on, and so the one the beat keeps warm: the UTC month of
    ``now`` (the cost pages count UTC months until they follow the tenant's time zone)."""
    return month_of(now.astimezone(UTC).date())


def _key(tenant: Tenant, period: date) -> str:
    return f"cost-summary:v1:{tenant.schema_name}:{month_text(period)}"


def month_fingerprint(period: date) -> tuple[object, ...]:
    """Cheap aggregates of the month's rollups and its allocation run: they change whenever
    anything the cost report reads changes (new or corrected calls, runs, infrastructure usage,
    a re-run allocation)."""
    rollups = usage_selectors.rollups_fingerprint(start=period, end=next_month(period))
    allocation = (
        AllocationRun.objects.filter(period=period)
        .order_by("-pk")
        .values_list("pk", "status")
        .first()
    )
    return (*rollups, allocation)


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
        by_template=sorted(report.by("template").items()),
        by_run_type=sorted(report.by("run_type").items()),
        run_count=len(report.runs),
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
    """The summary of ``period`` for ``tenant`` (current schema): from the cache when it is
    still right (same fingerprint) or young (under ``MAX_AGE``), else computed and cached."""
    now = now or timezone.now()
    key = _key(tenant, period)
    fingerprint = month_fingerprint(period)
    cached = None if refresh else _cache_get(key)
    if cached is not None and (
        cached.fingerprint == fingerprint or now - cached.computed_at < MAX_AGE
    ):
        return cached
    summary = summarize(cost_report(tenant=tenant, period=period), fingerprint=fingerprint, now=now)
    try:
        cache.set(key, summary, timeout=int(timedelta(days=40).total_seconds()))
    except Exception:  # a cache outage costs time, never the page
        logger.warning("cost summary not cached (cache unavailable)", exc_info=True)
    return summary


def _cache_get(key: str) -> CostSummary | None:
    try:
        return cache.get(key)
    except Exception:
        logger.warning("cost summary cache unavailable; computing", exc_info=True)
        return None
