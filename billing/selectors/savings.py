"""The savings page and API: prompt-caching savings per project and model, the cache-hit trend,
cheaper models per step and the recommendations built from them, split into listed and
dismissed.

Fetch, then compute: tokens come from usage's daily rollup and (run, step) pairs from
``usage.selectors.savings``; each day's tokens are priced with the tenant's prices in force at
that day's local noon (the ingest pricer's book and contract, ``TenantPricer.prices_at``); the
arithmetic is ``billing.domain.savings``. A report is cached while the range's rollups, the price
book and the tenant's contract terms are unchanged (like ``billing.selectors.summaries``); the
bounded pairs query's result is kept on its own (``_step_models``) and the beat keeps the page's
default range warm (``billing.tasks``). Dismissals are applied after
the cache, so dismissing shows at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from billing.domain import savings as domain
from billing.domain.savings import CacheSaving, CacheTokens, Recommendation, StepModel
from billing.models import RecommendationDismissal
from billing.pricing.domain import TokenPrices
from billing.pricing.pricer import tenant_pricer
from billing.pricing.selectors import prices_version
from factory_portal import periods
from factory_portal.tenants.connection import connection_zone
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors
from usage.selectors import savings as usage_savings

logger = logging.getLogger(__name__)
COMPARISON_DAYS = usage_savings.PAIRS_MAX_DAYS
PAIRS_MAX_AGE = timedelta(minutes=15)


@dataclass(frozen=True)
class CachingRow:
    """A project's model over the range: its tokens and what caching saved, USD unrounded."""

    project: str
    provider: str
    model: str
    tokens: CacheTokens
    saving: CacheSaving
    priced: bool  # False: no price for the model, so no saving is claimed

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class SavingsReport:
    start: date
    end: date  # inclusive
    comparison_start: date  # the cheaper-models comparison: the range's last days (<= 31)
    comparison_end: date
    fingerprint: tuple[object, ...]
    computed_at: datetime
    evidence_at: datetime  # when the (run, step) pairs of the comparison were read
    evidence_current: bool  # read from the data as it is now (not kept from before a change)
    caching: list[CachingRow]
    hit_trend: dict[str, dict[str, Decimal]]  # model -> ISO day -> cached share of input
    step_models: list[StepModel]
    recommendations: list[Recommendation]

    @property
    def caching_total(self) -> CacheSaving:
        return sum((row.saving for row in self.caching), CacheSaving())


@dataclass(frozen=True)
class SavingsView:
    report: SavingsReport
    listed: list[Recommendation]
    dismissed: list[tuple[Recommendation, RecommendationDismissal]]


def _fingerprint(start: date, end: date) -> tuple[object, ...]:
    rollups = usage_selectors.rollups_fingerprint(start=start, end=end + timedelta(days=1))
    # The prices' version changes with the book and with any tenant's contract terms.
    return (*rollups, prices_version())


def comparison_days(start: date, end: date) -> tuple[date, date]:
    """The days the cheaper-models comparison reads: the range's last ``COMPARISON_DAYS``."""
    return max(start, end - timedelta(days=COMPARISON_DAYS - 1)), end


def savings_report(
    *, tenant: Tenant, start: date, end: date, now: datetime | None = None
) -> SavingsReport:
    """The savings over the tenant's days ``start`` to ``end`` (inclusive) of ``tenant`` (the
    current schema): from the cache while the data behind it is unchanged, else computed."""
    now = now or timezone.now()
    zone = connection_zone()
    key = f"savings:v1:{tenant.schema_name}:{zone.key}:{start}:{end}"
    fingerprint = _fingerprint(start, end)
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("savings cache unavailable; computing", exc_info=True)
        cached = None
    if (
        cached is not None
        and cached.fingerprint == fingerprint
        and (cached.evidence_current or now - cached.evidence_at < PAIRS_MAX_AGE)
    ):
        return cached  # type: ignore[no-any-return]
    report = _compute(tenant, start, end, fingerprint, now)
    try:
        cache.set(key, report, timeout=int(timedelta(days=2).total_seconds()))
    except Exception:  # a cache outage costs time, never the page
        logger.warning("savings report not cached (cache unavailable)", exc_info=True)
    return report


def _compute(
    tenant: Tenant, start: date, end: date, fingerprint: tuple[object, ...], now: datetime
) -> SavingsReport:
    zone = connection_zone()
    pricer = tenant_pricer(tenant)
    days = usage_savings.cache_usage_daily(start=start, end=end + timedelta(days=1))
    tokens: dict[tuple[str, str, str], CacheTokens] = defaultdict(CacheTokens)
    saved: dict[tuple[str, str, str], CacheSaving] = defaultdict(CacheSaving)
    unpriced: set[tuple[str, str, str]] = set()
    latest: dict[tuple[str, str, str], TokenPrices] = {}
    trend: dict[str, dict[date, CacheTokens]] = defaultdict(lambda: defaultdict(CacheTokens))
    for row in days:
        key = (row.project, row.provider, row.model)
        counted = CacheTokens(row.input_tokens, row.cached_input_tokens, row.cache_write_tokens)
        tokens[key] += counted
        trend[f"{row.provider}/{row.model}"][row.day] += counted
        noon = periods.local_day_start(row.day, zone) + timedelta(hours=12)
        prices = pricer.prices_at(row.provider, row.model, noon)
        if prices is None:
            unpriced.add(key)
            continue
        saved[key] += domain.cache_saving(counted, prices)
        latest[key] = prices  # rows come by day: the last is the newest
    # Models that cache, or could (a cache-read price below the input price); embedding
    # models and the like are left out of the table and the trend.
    cacheable = {
        key
        for key in tokens
        if tokens[key].cached_input_tokens
        or tokens[key].cache_write_tokens
        or (key in latest and _reads_cheaper(latest[key]))
    }
    caching = sorted(
        (
            CachingRow(*key, tokens=tokens[key], saving=saved[key], priced=key not in unpriced)
            for key in cacheable
        ),
        key=lambda r: (-r.saving.net, r.project, r.name),
    )
    uses = [
        domain.ModelCacheUse(*key, tokens=tokens[key], prices=prices)
        for key, prices in latest.items()
        if key not in unpriced
    ]
    length = (end - start).days + 1
    advice = domain.caching_advice(uses, period_days=length)
    first, last = comparison_days(start, end)
    step_models, evidence_at, evidence_current = _step_models(tenant, first, last, now)
    cheaper = domain.cheaper_models(step_models, period_days=(last - first).days + 1)
    recommendations = [
        *(domain.recommendation_from_caching(found, start, end) for found in advice),
        *(domain.recommendation_from_model(found, first, last) for found in cheaper),
    ]
    recommendations.sort(key=lambda r: (-r.monthly_saving, r.key))
    return SavingsReport(
        start=start,
        end=end,
        comparison_start=first,
        comparison_end=last,
        fingerprint=fingerprint,
        computed_at=now,
        evidence_at=evidence_at,
        evidence_current=evidence_current,
        caching=caching,
        hit_trend={
            model: {
                day.isoformat(): rate
                for day, counted in sorted(per_day.items())
                if (rate := counted.hit_rate) is not None
            }
            for model, per_day in sorted(trend.items())
            if model in {f"{provider}/{name}" for _, provider, name in cacheable}
        },
        step_models=step_models,
        recommendations=recommendations,
    )


def _step_models(
    tenant: Tenant, first: date, last: date, now: datetime
) -> tuple[list[StepModel], datetime, bool]:
    """The comparison's (run, step) figures per template, step and model, when they were read
    and whether the data is unchanged since. The query reads every call of the period (seconds
    on a big tenant), so its result is kept while the period's rollups are unchanged, and for
    ``PAIRS_MAX_AGE`` after they change: a month of evidence hardly moves in minutes, and a busy
    tenant's rollups change with every ingest."""
    zone = connection_zone()
    key = f"savings-pairs:v1:{tenant.schema_name}:{zone.key}:{first}:{last}"
    fingerprint = usage_selectors.rollups_fingerprint(start=first, end=last + timedelta(days=1))
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("savings cache unavailable; computing", exc_info=True)
        cached = None
    if cached is not None and (cached[0] == fingerprint or now - cached[1] < PAIRS_MAX_AGE):
        return cached[2], cached[1], cached[0] == fingerprint
    rows = [
        StepModel(
            template=row.template,
            step=row.step,
            provider=row.provider,
            model=row.model,
            pairs=row.pairs,
            first_pass=row.first_pass,
            cost=row.cost,
        )
        for row in usage_savings.step_model_pairs(
            start=periods.local_day_start(first, zone),
            end=periods.local_day_start(last + timedelta(days=1), zone),
        )
    ]
    try:
        cache.set(key, (fingerprint, now, rows), timeout=int(timedelta(days=2).total_seconds()))
    except Exception:
        logger.warning("savings pairs not cached (cache unavailable)", exc_info=True)
    return rows, now, True


def _reads_cheaper(prices: TokenPrices) -> bool:
    return prices.cache_read is not None and prices.cache_read < prices.input


def savings_view(
    *, tenant: Tenant, start: date, end: date, now: datetime | None = None
) -> SavingsView:
    """The report with its recommendations split into listed and dismissed."""
    report = savings_report(tenant=tenant, start=start, end=end, now=now)
    dismissals = {
        d.key: d
        for d in RecommendationDismissal.objects.filter(
            key__in=[r.key for r in report.recommendations]
        )
    }
    return SavingsView(
        report=report,
        listed=[r for r in report.recommendations if r.key not in dismissals],
        dismissed=[(r, dismissals[r.key]) for r in report.recommendations if r.key in dismissals],
    )
