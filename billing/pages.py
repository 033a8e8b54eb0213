"""Tenant cost pages (finance and admin roles): trends, AI versus infrastructure, waste, unit
costs, and how shared cost was allocated to the tenant."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.costs import cost_report
from factory_portal import charts
from factory_portal.accounts.models import Role
from usage import selectors as usage_selectors

DIMENSIONS = ("project", "model", "provider", "run_type", "template")
GRAINS = {"day": 30, "week": 91, "month": 365}


def _month(value: str, default: date) -> date:
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except ValueError:
        return default


@login_required
def costs(request: HttpRequest) -> HttpResponse:
    if not request.user.has_role(Role.FINANCE):
        raise PermissionDenied("Costs are for the finance and admin roles.")
    today = timezone.now().date()
    dimension = request.GET.get("by", "project")
    dimension = dimension if dimension in DIMENSIONS else "project"
    grain = request.GET.get("grain", "day")
    grain = grain if grain in GRAINS else "day"
    month = _month(request.GET.get("month", ""), today.replace(day=1))
    trend = usage_selectors.cost_trend(
        start=today - timedelta(days=GRAINS[grain] - 1), end=today, dimension=dimension, grain=grain
    )
    report = cost_report(tenant=connection.tenant, period=month)
    run_totals = sorted(run.total for run in report.runs)
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
            "report": report,
            "by_template": sorted(report.by("template").items()),
            "by_run_type": sorted(report.by("run_type").items()),
            "histogram": charts.distribution_chart(run_totals) if run_totals else None,
            "tenant_lines": [line for line in report.lines if line.level == "tenant"],
        },
    )
