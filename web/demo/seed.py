"""Seeds the demo tenants: creates each tenant, its users and 90 days of generated history.

Deterministic: the same ``seed`` and ``now`` give the same rows (each tenant has its own random
stream, so the order tenants are seeded in does not matter).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django_tenants.utils import schema_context

from billing.operator.models import AllocationRun, PriceBookEntry
from billing.pricing.book import pricebook_refresh
from billing.pricing.selectors import price_schedule
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenant_by_slug
from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
from web.demo.billing import demo_billing
from web.demo.generate import TenantProfile, generate_history
from web.demo.load import LoadResult, history_load, schema_analyze
from web.demo.profiles import PROFILES
from web.demo.runtime import metrics_store, runtime_history_store
from web.demo.traces import TokenSampler


@dataclass(frozen=True)
class SeededTenant:
    tenant: Tenant
    result: LoadResult | None  # None: existed already and was left alone
    seconds: float


def _offset_hours(tenant: Tenant, now: datetime) -> float:
    offset = now.astimezone(ZoneInfo(tenant.timezone)).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0


def demo_users(slug: str) -> list[tuple[str, str]]:
    return [
        (f"admin@{slug}.test", Role.ADMIN),
        (f"finance@{slug}.test", Role.FINANCE),
        (f"dev@{slug}.test", Role.MEMBER),
    ]


def demo_seed(
    *,
    seed: int,
    now: datetime,
    days: int,
    password: str,
    reset: bool = False,
    profiles: tuple[TenantProfile, ...] = PROFILES,
    progress: Callable[[str], None] = lambda message: None,
    billing: bool = True,
    metric_days: int = 14,
) -> list[SeededTenant]:
    """Seed ``profiles`` with ``days`` of history (runtime metrics: the last ``metric_days`` of
    it); with ``billing``, also the platform's bills, allocation, budgets and forecasts
    (public-schema cost pools shared by all tenants) and the platform's own runtime metrics."""
    public_tenant_ensure()
    if not PriceBookEntry.objects.exists():
        refreshed = pricebook_refresh()
        progress(f"price book: {refreshed.created} entries from genai-prices {refreshed.version}")
    prices = price_schedule()
    seeded = []
    for profile in profiles:
        started = time.perf_counter()
        existing = tenant_by_slug(profile.slug)
        if existing is not None and not reset:
            progress(f"{profile.slug}: exists, left as it is (use --reset to re-create)")
            seeded.append(SeededTenant(existing, None, 0.0))
            continue
        if existing is not None:
            # Allocation lines protect a tenant's financial history; a demo reset recomputes
            # every allocation anyway (pools stay).
            AllocationRun.objects.all().delete()
            tenant_delete(tenant=existing)
        users = demo_users(profile.slug)
        created = tenant_create(
            slug=profile.slug, name=profile.name, admin_email=users[0][0], admin_password=password
        )
        rng = random.Random(f"{seed}:{profile.slug}")
        history = generate_history(
            profile=profile,
            rng=rng,
            now=now,
            days=days,
            samples=TokenSampler(rng),
            incident_day=rng.randrange(days // 3, days - 5) if days > 10 else None,
        )
        with schema_context(created.tenant.schema_name):
            for email, role in users[1:]:
                user_create(email=email, role=role, password=password)
            result = history_load(history, prices)
            runtime = runtime_history_store(
                history=history,
                tenant=created.tenant,
                now=now,
                rng=rng,
                days=min(days, metric_days),
                scale=profile.runs_per_day / 30,
                zone_offset_hours=_offset_hours(created.tenant, now),
            )
            schema_analyze()
        tenant = created.tenant
        tenant.usage_complete_until = max((e.occurred_at for e in history.llm), default=None)
        tenant.save(update_fields=["usage_complete_until"])
        elapsed = time.perf_counter() - started
        progress(
            f"{profile.slug}: {result.runs:,} runs, {result.jobs:,} jobs,"
            f" {result.llm_events:,} LLM calls ({result.unpriced_events:,} unpriced),"
            f" {result.infra_events:,} infrastructure events, AI cost ${result.cost:,.2f};"
            f" {runtime.errors:,} errors, {runtime.logs:,} log lines,"
            f" {runtime.metric_points:,} metric points, {runtime.incidents} past incidents"
            f" in {elapsed:.1f}s"
        )
        seeded.append(SeededTenant(tenant, result, elapsed))
    if billing and any(s.result is not None for s in seeded):
        # The platform's own queues and workers (no tenant): the operator's runtime pages.
        with schema_context("public"):
            points, series, incidents = metrics_store(
                now=now, rng=random.Random(f"{seed}:platform"), days=min(days, metric_days), scale=3
            )
        progress(
            f"platform: {points:,} metric points in {series} series, {incidents} past incidents"
        )
    if billing:
        tenants = [s.tenant for s in seeded]
        for line in demo_billing(seed=seed, now=now, months=3, tenants=tenants):
            progress(line)
        with schema_context("public"):
            schema_analyze()  # the platform's metric points and bills, for the operator pages
    return seeded
