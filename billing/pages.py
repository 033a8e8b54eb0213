"""Tenant cost pages (finance and admin roles): trends, AI versus infrastructure, waste, unit
costs, and how shared cost was allocated to the tenant."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.cost_summaries import cost_summary
from factory_portal import charts, periods
from factory_portal.accounts.permissions import role_required
from usage import selectors as usage_selectors

DIMENSIONS = ("project", "model", "provider", "run_type", "template")
GRAINS = {"day": 30, "week": 91, "month": 365}


@role_required("costs")
def costs(request: HttpRequest) -> HttpResponse:
    today = timezone.now().date()
    dimension = request.GET.get("by", "project")
    dimension = dimension if dimension in DIMENSIONS else "project"
    grain = request.GET.get("grain", "day")
    grain = grain if grain in GRAINS else "day"
    errors = []
    month = periods.month_of(today)
    if request.GET.get("month"):
        try:
            month = periods.month_parse(request.GET["month"])
        except periods.PeriodError as exc:
            errors.append(f"{exc} Showing {periods.month_text(month)}.")
    trend = usage_selectors.cost_trend(
        start=today - timedelta(days=GRAINS[grain] - 1), end=today, dimension=dimension, grain=grain
    )
    summary = cost_summary(tenant=connection.tenant, period=month)
    return render(
        request,
        "billing/costs.html",
        {
            "trend_chart": charts.trend_chart(trend),
            "dimension": dimension,
            "grain": grain,
            "dimensions": DIMENSIONS,
            "grains": list(GRAINS),
            "month": month,
            "report": summary,
            "by_template": summary.by_template,
            "by_run_type": summary.by_run_type,
            "histogram": charts.distribution_chart(summary.distribution)
            if summary.distribution
            else None,
            "tenant_lines": summary.lines,
            "errors": errors,
        },
    )
