"""Tenant pages that combine usage and billing (overview, run details). Thin: selectors from
``usage`` and ``billing`` do the work; this module only composes them (``usage`` itself never
imports ``billing``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.selectors.budgets import budgets_status
from billing.selectors.periods import allocation_statuses, month_cost
from billing.services import forecast_ensure
from factory_portal import charts
from factory_portal.accounts.permissions import can, role_required
from factory_portal.tenants.connection import connection_zone
from usage import selectors
from usage.selectors import run_trace
from usage.selectors.overview import overview as usage_overview
from web.onboarding import onboarding_checklist


@role_required("signed_in")
def overview(request: HttpRequest) -> HttpResponse:
    """Everyone's landing page, showing only the areas the role may open (``portal_can`` in the
    template): cost, forecast and budgets for ``costs``; runs and durations for ``runs``."""
    tenant = connection.tenant
    now = timezone.now()
    data = usage_overview(now=now, zone=connection_zone())
    today = data.today
    start = today - timedelta(days=29)
    context: dict[str, object] = {"overview": data, "tenant": tenant}
    context["onboarding"] = onboarding_checklist(request)
    if can(request.user, "costs"):
        context["month_cost"] = month_cost(tenant=tenant, month=today)
        days = [start + timedelta(days=n) for n in range(30)]
        forecast = forecast_ensure(today=today)
        forecast_days = forecast.days if forecast else []
        upcoming = [row for row in forecast_days if row.day >= today][:14]
        context["chart"] = charts.daily_cost_chart(
            selectors.daily_cost_by_project(start=start, end=today), days, upcoming
        )
        context["forecast"] = forecast
        context["budgets"] = budgets_status(tenant=tenant, now=now)
    if can(request.user, "runs"):
        context["durations"] = selectors.duration_percentiles(start=start, end=today)
    return render(request, "usage/overview.html", context)


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 7 else 1


@role_required("runs")
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    """A run with what to debug it from: the error panel (the error, its stack trace, the logs
    around it, every error in time order), the waterfall of jobs and calls, the logs
    (``?level=`` at least that level, ``?page=``)."""
    detail = selectors.run_detail(run_id)
    if detail is None:
        raise Http404("No such run in this tenant.")
    run = detail.run
    # Its infrastructure: its share in each month it used something, once allocated (the same
    # stored shares run history lists and sorts by).
    allocated = allocation_statuses(detail.months)
    infra_cost = detail.allocated_cost if allocated else None
    template = settings.PORTAL_TRACE_URL_TEMPLATE
    trace_url = template.format(trace_id=run.trace_id) if template and run.trace_id else ""
    now = timezone.now()
    errors = run_trace.run_errors(run)
    main_error = errors.main
    waterfall = run_trace.run_waterfall(run, detail.jobs, now=now)
    return render(
        request,
        "usage/run_detail.html",
        {
            "detail": detail,
            "run": run,
            "trace_url": trace_url,
            "infra_cost": infra_cost,
            "total_cost": detail.token_cost + (infra_cost or Decimal(0)),
            "errors": errors,
            "main_error": main_error,
            "logs_around": run_trace.logs_around(run, main_error.occurred_at) if main_error else [],
            "waterfall": waterfall,
            "timeline": charts.run_waterfall(waterfall.rows) if waterfall.rows else None,
            "logs": run_trace.run_logs(
                run,
                level=request.GET.get("level", ""),
                page=_page_number(request.GET.get("page")),
            ),
            "levels": run_trace.LEVELS,
        },
    )
