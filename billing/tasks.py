"""Celery tasks of billing: forecast, cost-summary and run guard refresh (beat fans out one task
per tenant)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from billing.selectors.savings import savings_report
from billing.selectors.summaries import cost_summary, range_summary, summary_month
from billing.services import forecasts_refresh, run_allocations_store, run_guards_refresh
from factory_portal import periods, ranges
from factory_portal.celery import app
from factory_portal.tenants.connection import connection_zone
from factory_portal.tenants.fanout import tenants_fan_out


@app.task
def forecasts_refresh_all() -> int:
    return tenants_fan_out(forecasts_refresh_tenant)


@app.task
def forecasts_refresh_tenant() -> int:
    """Runs in the enqueuing tenant's schema (tenant-schemas-celery)."""
    return forecasts_refresh(today=periods.local_date(timezone.now(), connection_zone()))


# The costs page's presets that are not calendar months (this and last month are cost_summary's).
RANGE_PRESETS_WARM = ("today", "7d", "30d", "90d")


@app.task
def cost_summaries_refresh_all() -> int:
    """Beat: recompute the current month's cost summary of every tenant (one task each)."""
    return tenants_fan_out(cost_summary_refresh_tenant)


@app.task
def cost_summary_refresh_tenant(month: str = "") -> str:
    """Runs in the enqueuing tenant's schema: keeps the summary of ``month`` (YYYY-MM; by default
    the month the costs page opens on, ``summary_month``) warm, recomputing only when the
    month's data changed, and each run's share of the month's infrastructure where run lists
    read it."""
    tenant = connection.tenant
    now = timezone.now()
    period = (
        periods.month_parse(month) if month else summary_month(now, periods.zone(tenant.timezone))
    )
    summary = cost_summary(tenant=tenant, period=period, now=now)
    if summary.computed_at == now:  # recomputed: its shares may have changed
        run_allocations_store(month=period, run_infra=summary.run_infra)
    if not month:  # the costs page's presets that are not a calendar month, warm too
        today = periods.local_date(now, periods.zone(tenant.timezone))
        for key in RANGE_PRESETS_WARM:
            chosen = ranges.preset_range(key, today)
            end = chosen.end + timedelta(days=1)
            range_summary(tenant=tenant, start=chosen.start, end=end, now=now)
        # The savings page's default range (its cheaper-models query reads a month of calls).
        chosen = ranges.preset_range("30d", today)
        savings_report(tenant=tenant, start=chosen.start, end=chosen.end, now=now)
    return f"{tenant.schema_name}: {summary.run_count} runs as of {summary.computed_at:%H:%M}"


@app.task
def run_allocations_refresh_all(month: str) -> int:
    """After an allocation run of ``month`` (YYYY-MM): every tenant's run shares of it."""
    return tenants_fan_out(cost_summary_refresh_tenant, args=(month,))


@app.task
def run_guards_refresh_all() -> int:
    """Beat, every minute: every tenant's run guard pass (what ingest's debounced pass missed)."""
    return tenants_fan_out(run_guards_refresh_tenant)


@app.task
def run_guards_refresh_tenant() -> int:
    """Runs in the enqueuing tenant's schema: re-evaluate its active and open guarded runs."""
    return run_guards_refresh()


@app.task
def run_guards_finish_tenant(run_pks: list[int]) -> int:
    """Runs in the enqueuing tenant's schema: the final figures of these finished runs."""
    return run_guards_refresh(run_pks=run_pks)
