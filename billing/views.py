"""Tenant pages of billing (finance and admin roles): costs (trends, AI versus infrastructure,
waste, unit costs, how shared cost was allocated to the tenant), budgets, and the monthly reports
with their downloads.

Views parse the request, call one selector or service and render. Budgets are created, changed and
deleted only through ``billing.services`` (as ``manage.py budget_set`` does), and only by admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from billing import services
from billing.exports import FORMATS, report_file
from billing.forms import BudgetForm
from billing.models import Budget
from billing.selectors.budgets import BudgetStatus, budgets_status
from billing.selectors.summaries import cost_summary, summary_month
from factory_portal import charts, periods
from factory_portal.accounts.permissions import can, denial, role_required
from factory_portal.money import usd
from factory_portal.tenants.connection import connection_zone
from usage import selectors as usage_selectors

# Costs

DIMENSIONS = ("project", "model", "provider", "run_type", "template")
GRAINS = {"day": 30, "week": 91, "month": 365}


@role_required("costs")
def costs(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    zone = connection_zone()
    today = periods.local_date(now, zone)
    dimension = request.GET.get("by", "project")
    dimension = dimension if dimension in DIMENSIONS else "project"
    grain = request.GET.get("grain", "day")
    grain = grain if grain in GRAINS else "day"
    errors = []
    month = summary_month(now, zone)
    if request.GET.get("month"):
        try:
            month = periods.month_parse(request.GET["month"])
        except periods.PeriodError as exc:
            errors.append(f"{exc} Showing {periods.month_text(month)}.")
    trend = usage_selectors.cost_trend(
        start=today - timedelta(days=GRAINS[grain] - 1), end=today, dimension=dimension, grain=grain
    )
    summary = cost_summary(tenant=connection.tenant, period=month)
    unpriced = [
        row
        for row in usage_selectors.model_costs(start=month, end=periods.next_month(month))
        if row.unpriced_calls
    ]
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
            "unpriced": unpriced,
            "unpriced_calls": sum(row.unpriced_calls for row in unpriced),
            "errors": errors,
        },
    )


# Budgets


@dataclass(frozen=True)
class BudgetRow:
    status: BudgetStatus
    scope: str
    used: Decimal  # spent / amount (a ratio, shown as a percentage)


def _scope(project: str, names: dict[str, str]) -> str:
    return f"Project {names.get(project, project)}" if project else "Whole tenant"


def _budgets_page(request: HttpRequest, form: BudgetForm | None, status: int = 200) -> HttpResponse:
    names = usage_selectors.project_names()
    rows = [
        BudgetRow(status=s, scope=_scope(s.budget.project, names), used=s.spent / s.budget.amount)
        for s in budgets_status(tenant=connection.tenant, now=timezone.now())
    ]
    return render(
        request,
        "billing/budgets.html",
        {"rows": rows, "form": form, "can_edit": form is not None, "has_projects": bool(names)},
        status=status,
    )


@role_required("budgets")
def budgets(request: HttpRequest) -> HttpResponse:
    if not can(request.user, "admin"):
        if request.method == "POST":
            raise PermissionDenied(denial("admin"))
        return _budgets_page(request, form=None)
    if request.method != "POST":
        return _budgets_page(request, form=BudgetForm(projects=usage_selectors.project_names()))
    form = BudgetForm(request.POST, projects=usage_selectors.project_names())
    if form.is_valid():
        try:
            budget = services.budget_set(
                amount=form.cleaned_data["amount"],
                project=form.cleaned_data["scope"],
                thresholds=form.cleaned_data["thresholds"],
                basis=form.cleaned_data["basis"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            names = usage_selectors.project_names()
            messages.success(
                request,
                f"Budget of {_scope(budget.project, names)} saved: {usd(budget.amount)} a month.",
            )
            return redirect("budgets")
    return _budgets_page(request, form=form, status=400)


@role_required("admin")
def budget_edit(request: HttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget, pk=pk)
    names = usage_selectors.project_names()
    form = BudgetForm(
        request.POST if request.method == "POST" else None, projects={}, budget=budget
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.budget_set(
                amount=form.cleaned_data["amount"],
                project=budget.project,
                thresholds=form.cleaned_data["thresholds"],
                basis=form.cleaned_data["basis"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"Budget of {_scope(budget.project, names)} saved: {usd(saved.amount)} a month.",
            )
            return redirect("budgets")
    return render(
        request,
        "billing/budget_form.html",
        {"form": form, "budget": budget, "scope": _scope(budget.project, names)},
        status=400 if form.errors else 200,
    )


@role_required("admin")
def budget_delete(request: HttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget, pk=pk)
    scope = _scope(budget.project, usage_selectors.project_names())
    if request.method == "POST":
        services.budget_delete(budget=budget)
        messages.success(request, f"Budget of {scope} deleted.")
        return redirect("budgets")
    return render(request, "billing/budget_delete.html", {"budget": budget, "scope": scope})


# Reports

REPORT_FORMAT_LABELS = [
    ("csv", "CSV"),
    ("xlsx", "Excel (XLSX)"),
    ("focus", "FOCUS CSV"),
]
REPORT_MONTHS = 12


def recent_months(today: date, count: int = REPORT_MONTHS) -> list[date]:
    """The first days of ``today``'s month and the ``count - 1`` months before it, newest first."""
    return periods.months_ending(today, count)[::-1]


@role_required("costs")
def reports(request: HttpRequest) -> HttpResponse:
    """The last 12 months (in the tenant's timezone) with links to each month's downloads."""
    months = recent_months(periods.local_date(timezone.now(), connection_zone()))
    return render(
        request,
        "billing/reports.html",
        {"months": months, "current": months[0], "formats": REPORT_FORMAT_LABELS},
    )


@role_required("costs")
def report_download(request: HttpRequest, period: str, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404("Unknown report format")
    try:
        month_start = periods.month_parse(period)
    except periods.PeriodError as exc:
        raise Http404(str(exc)) from exc
    return report_file(connection.tenant, month_start, fmt)
