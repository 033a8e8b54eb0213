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
from billing.forms import BudgetForm, RunBudgetForm
from billing.models import Budget, RunBudget
from billing.selectors import guard as guard_selectors
from billing.selectors.budgets import BudgetStatus, budgets_status
from billing.selectors.costs import UnitCost
from billing.selectors.summaries import OUTSIDE_RUNS, cost_summary, range_summary
from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, denial, role_required
from factory_portal.money import usd
from factory_portal.tenants.connection import connection_zone
from usage import selectors as usage_selectors

# Costs

DIMENSIONS = {
    "project": "Project",
    "model": "Model",
    "provider": "Provider",
    "run_type": "Run type",
    "template": "Template",
}
# The dimensions run history filters by: their bars and rows drill down to the runs.
RUN_FILTERS = ("project", "template", "run_type", "model")
GRAINS = {"day": "Day", "week": "Week", "month": "Month"}
DAILY_UP_TO = 92  # longer ranges open per week
NO_GROUP = ("(none)", OUTSIDE_RUNS)  # group rows that stand for no run filter


@dataclass(frozen=True)
class GroupRow:
    """A row of "cost per successful run": its runs link to run history when ``href``."""

    name: str
    unit: UnitCost
    href: str


def _costs_range(request: HttpRequest, today: date) -> tuple[ranges.DayRange, list[str]]:
    """The range the page shows: ``?month=YYYY-MM`` (older links and the reports page) is that
    calendar month unless a ``range`` is given; else the range control's, this month by
    default."""
    raw_month = request.GET.get("month", "")
    if raw_month and not request.GET.get("range"):
        try:
            return ranges.month_range(periods.month_parse(raw_month), today), []
        except periods.PeriodError as exc:
            return ranges.preset_range("this_month", today), [f"{exc} Showing this month."]
    return ranges.range_parse(request.GET, today=today, default="this_month")


def _trend_links(
    trend: dict[str, dict[str, Decimal]], dimension: str, grain: str, chosen: ranges.DayRange
) -> dict[str, dict[str, str]]:
    """Each bar's run history: the runs of that project, template or run type on the bar's
    days (inside the range)."""
    return {
        name: {
            key: ranges.runs_href(ranges.period_days(key, grain, chosen), **{dimension: name})
            for key in values
        }
        for name, values in trend.items()
        if name not in NO_GROUP
    }


def _group_rows(
    rows: list[tuple[str, UnitCost]], filter_name: str, chosen: ranges.DayRange, linked: bool
) -> list[GroupRow]:
    return [
        GroupRow(
            name,
            unit,
            ranges.runs_href(chosen, **{filter_name: name})
            if linked and name not in NO_GROUP
            else "",
        )
        for name, unit in rows
    ]


@role_required("costs")
def costs(request: HttpRequest) -> HttpResponse:
    """AI and infrastructure cost over the range of the time-range control. Infrastructure is
    allocated per calendar month: a range that is one month shows its allocation (the figures of
    /api/v1/costs and the monthly report, to the cent); any other range shows AI cost over its
    exact days and links to the months' allocations, never a prorated share."""
    now = timezone.now()
    zone = connection_zone()
    today = periods.local_date(now, zone)
    chosen, errors = _costs_range(request, today)
    dimension = request.GET.get("by", "project")
    dimension = dimension if dimension in DIMENSIONS else "project"
    grain = request.GET.get("grain", "")
    grain = grain if grain in GRAINS else ("day" if chosen.length <= DAILY_UP_TO else "week")
    linked = can(request.user, "runs")
    month = ranges.calendar_month(chosen, today)
    end = chosen.end + timedelta(days=1)
    if month is not None:
        summary = cost_summary(tenant=connection.tenant, period=month)
        end = periods.next_month(month)
    else:
        summary = range_summary(tenant=connection.tenant, start=chosen.start, end=end, now=now)
    trend = usage_selectors.cost_trend(
        start=chosen.start, end=chosen.end, dimension=dimension, grain=grain
    )
    links = (
        _trend_links(trend, dimension, grain, chosen)
        if linked and dimension in RUN_FILTERS
        else None
    )
    unpriced = [
        row
        for row in usage_selectors.model_costs(start=chosen.start, end=end)
        if row.unpriced_calls
    ]
    params = request.GET.copy()
    params.pop("month", None)  # the range control's presets and form choose the range now
    months = [
        (
            first,
            "?" + ranges.with_range(ranges.month_range(first, today), by=dimension, grain=grain),
        )
        for first in periods.months_spanning(chosen.start, chosen.end)
    ]
    return render(
        request,
        "billing/costs.html",
        {
            "time_range": ranges.control(params, chosen, errors),
            "span": ranges.span_text(chosen),
            "month": month,
            "months": months,
            "trend_chart": charts.trend_chart(
                trend,
                links,
                periods=sorted({periods.period_key(day, grain) for day in chosen.days}),
            )
            if trend
            else None,
            "dimension": dimension,
            "dimension_label": DIMENSIONS[dimension],
            "grain": grain,
            "dimensions": DIMENSIONS,
            "grains": GRAINS,
            "report": summary,
            "by_template": _group_rows(summary.by_template, "template", chosen, linked),
            "by_run_type": _group_rows(summary.by_run_type, "run_type", chosen, linked),
            "histogram": charts.distribution_chart(summary.distribution)
            if summary.distribution
            else None,
            "tenant_lines": summary.lines,
            "unpriced": [
                (row, ranges.runs_href(chosen, project=row.project) if linked else "")
                for row in unpriced
            ],
            "unpriced_calls": sum(row.unpriced_calls for row in unpriced),
        },
    )


# Budgets


@dataclass(frozen=True)
class BudgetRow:
    status: BudgetStatus
    scope: str
    used: Decimal  # spent / amount (a ratio, shown as a percentage)
    reserved: guard_selectors.ReservedBudget  # what active guarded runs still expect to spend


def _scope(project: str, names: dict[str, str]) -> str:
    return f"Project {names.get(project, project)}" if project else "Whole tenant"


def _budgets_page(request: HttpRequest, form: BudgetForm | None, status: int = 200) -> HttpResponse:
    names = usage_selectors.project_names()
    statuses = budgets_status(tenant=connection.tenant, now=timezone.now())
    rows = [
        BudgetRow(
            status=s,
            scope=_scope(s.budget.project, names),
            used=s.spent / s.budget.amount,
            reserved=r,
        )
        for s, r in zip(statuses, guard_selectors.budgets_reserved(statuses), strict=True)
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


# Run budgets


def _run_budget_scope(budget: RunBudget, names: dict[str, str]) -> str:
    project = f"project {names.get(budget.project, budget.project)}" if budget.project else ""
    template = f"template {budget.template}" if budget.template else ""
    return " and ".join(p for p in (project, template) if p).capitalize() or "Every run"


@role_required("budgets")
def run_budgets(request: HttpRequest) -> HttpResponse:
    """Run budgets (admins add and delete them) and the runs they guard now."""
    names = usage_selectors.project_names()
    can_edit = can(request.user, "admin")
    form = RunBudgetForm(projects=names) if can_edit else None
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied(denial("admin"))
        form = RunBudgetForm(request.POST, projects=names)
        if form.is_valid():
            data = form.cleaned_data
            try:
                budget = services.run_budget_set(
                    project=data["project"],
                    template=data["template"].strip(),
                    basis=data["basis"],
                    amount=data["amount"],
                    multiple=data["multiple"],
                    warn_percent=data["warn_percent"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Run budget saved: {_run_budget_scope(budget, names)}.")
                return redirect("run-budgets")
        status = 400
    budgets = [(b, _run_budget_scope(b, names)) for b in guard_selectors.run_budgets()]
    return render(
        request,
        "billing/run_budgets.html",
        {
            "budgets": budgets,
            "guards": guard_selectors.run_guards_open(),
            "form": form,
            "can_edit": can_edit,
        },
        status=status,
    )


@role_required("admin")
def run_budget_delete(request: HttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(RunBudget, pk=pk)
    scope = _run_budget_scope(budget, usage_selectors.project_names())
    if request.method == "POST":
        services.run_budget_delete(budget=budget)
        messages.success(request, f"Run budget deleted: {scope}.")
        return redirect("run-budgets")
    return render(request, "billing/run_budget_delete.html", {"budget": budget, "scope": scope})
