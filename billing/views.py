"""Tenant pages of billing (finance and admin roles): costs (trends, AI versus infrastructure,
waste, unit costs, how shared cost was allocated to the tenant), budgets, prepaid commitments
(read-only: the operator records them), and the monthly reports with their downloads.

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
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from billing import services
from billing.exports import FORMATS, report_file
from billing.forms import BudgetForm, RunBudgetForm
from billing.models import Budget, RunBudget
from billing.selectors import guard as guard_selectors
from billing.selectors.budgets import BudgetStatus, budgets_status
from billing.selectors.commitments import CommitmentStatus, commitments_status_now
from billing.selectors.cost_change import CompareError, compare_range, period_cost_change
from billing.selectors.costs import UnitCost
from billing.selectors.periods import allocation_statuses
from billing.selectors.quotes import (
    HISTORY_DAYS,
    history_window,
    quote_budget,
    quote_compute,
    quotes_table,
)
from billing.selectors.savings import savings_view
from billing.selectors.summaries import OUTSIDE_RUNS, cost_summary, range_summary
from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, denial, role_required
from factory_portal.money import usd
from factory_portal.tenants.connection import connection_zone
from usage import selectors as usage_selectors
from usage.domain.limits import RUN_TYPE_LENGTH, TEMPLATE_LENGTH
from usage.selectors.partitions import RawEventsExpired

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
    why = _cost_change_panel(request, chosen, errors, linked)
    return render(
        request,
        "billing/costs.html",
        {
            "why": why,
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


CHART_LABELS = {
    "volume": "Volume",
    "mix": "Mix",
    "cache": "Cache hits",
    "unit_price": "Unit price",
    "waste": "Waste",
}


@dataclass(frozen=True)
class ChangeRow:
    label: str
    amount: Decimal
    href: str  # the runs behind a line made of runs (volume, a template's runs), else ""


def _compare_days(request: HttpRequest) -> tuple[date | None, date | None]:
    found = []
    for name in ("compare_from", "compare_to"):
        raw = request.GET.get(name, "").strip()
        try:
            found.append(periods.day_parse(raw) if raw else None)
        except periods.PeriodError as exc:
            raise CompareError(f"{name}: {exc}") from None
    return found[0], found[1]


def _cost_change_panel(
    request: HttpRequest, chosen: ranges.DayRange, errors: list[str], linked: bool
) -> dict[str, object]:
    """ "Why did cost change?": the range against the previous range of equal length, or the
    period ``?compare_from=&compare_to=``, as a waterfall and the lines of each part."""
    try:
        before = compare_range(chosen, *_compare_days(request))
    except CompareError as exc:
        errors.append(f"{exc} Comparing with the previous period.")
        before = chosen.previous()
    change = period_cost_change(
        tenant=connection.tenant,
        before=(before.start, before.end),
        after=(chosen.start, chosen.end),
    )

    def href(dims: dict[str, str], part: str) -> str:
        if not linked:
            return ""
        if part == "volume":
            return ranges.runs_href(chosen)
        if part == "mix" and set(dims) == {"template"}:
            return ranges.runs_href(chosen, template=dims["template"])
        return ""

    parts = [
        (
            part,
            [ChangeRow(line.label, line.amount, href(line.dims, part.part)) for line in part.lines],
        )
        for part in change.parts
    ]
    before_label = f"{before.start:%-d %b} to {before.end:%-d %b %Y}"
    return {
        "change": change,
        "before": before,
        "before_label": before_label,
        # The page's other parameters, kept by the compare form (the range, the chart's split).
        "keep": [
            (name, value)
            for name, values in request.GET.lists()
            if name not in ("compare_from", "compare_to")
            for value in values
        ],
        "parts": parts,
        "chart": charts.cost_change_chart(
            ("Before", change.before),
            [(CHART_LABELS[part.part], part.amount) for part in change.parts],
            ("After", change.after),
        )
        if change.before or change.after
        else None,
    }


# Quotes


@role_required("costs")
def quotes(request: HttpRequest) -> HttpResponse:
    """Quotes before a run: per template and run type, what a run is expected to cost and take
    (P50/P90 of the comparable runs finished in the last 30 days) and its steps' expected cost;
    the form quotes one project, template and run type as ``POST /api/v1/quotes`` does."""
    today = periods.local_date(timezone.now(), connection_zone())
    tables = quotes_table(today=today)
    start, end = history_window(today)
    history = ranges.DayRange(start=start, end=end)
    linked = can(request.user, "runs")
    asked = {name: request.GET.get(name, "") for name in ("project", "template", "run_type")}
    projects = usage_selectors.project_slugs()
    quote = budget = None
    problem = ""
    if request.GET.get("project"):
        if asked["project"] not in projects:
            problem = f"No project {asked['project'][:100]!r} in this workspace."
        elif bad := _quote_text_problem(asked):
            problem = bad
        else:
            quote = quote_compute(**asked, today=today)
            if quote is None:
                problem = (
                    f"No run of template {asked['template'][:200]!r} finished in the last"
                    f" {HISTORY_DAYS} days: nothing to quote from."
                )
            else:
                budget = quote_budget(quote, today=today)
    return render(
        request,
        "billing/quotes.html",
        {
            "tables": [
                (
                    table,
                    [
                        (
                            row,
                            ranges.runs_href(
                                history,
                                template=row.template or "",
                                run_type=row.run_type or "",
                            )
                            if linked
                            else "",
                        )
                        for row in table.rows
                    ],
                )
                for table in tables
            ],
            "history_days": HISTORY_DAYS,
            "start": start,
            "end": end,
            "projects": projects,
            "templates": [table.template for table in tables],
            "asked": asked,
            "quote": quote,
            "quote_runs_href": ranges.runs_href(
                history,
                template=quote.template,
                run_type=quote.run_type if quote.scope != "template" else "",
                project=quote.project if quote.scope == "project" else "",
            )
            if quote is not None and linked
            else "",
            "budget": budget,
            "problem": problem,
        },
    )


def _quote_text_problem(asked: dict[str, str]) -> str:
    """Why the asked template or run type cannot be a run's (too long, a NUL), else ""."""
    for name, longest in (("template", TEMPLATE_LENGTH), ("run_type", RUN_TYPE_LENGTH)):
        if len(asked[name]) > longest:
            return f"The {name.replace('_', ' ')} is longer than {longest} characters."
        if "\x00" in asked[name]:
            return f"The {name.replace('_', ' ')} holds a NUL character."
    return ""


# Savings

SAVINGS_MAX_DAYS = 92


@role_required("costs")
def savings(request: HttpRequest) -> HttpResponse:
    """What prompt caching saved per project and model, the cache-hit trend, and
    recommendations (caching left off, cheaper models per step) with their evidence; admins
    dismiss them and undo."""
    now = timezone.now()
    today = periods.local_date(now, connection_zone())
    chosen, errors = ranges.range_parse(
        request.GET, today=today, default="30d", max_days=SAVINGS_MAX_DAYS
    )
    view = savings_view(tenant=connection.tenant, start=chosen.start, end=chosen.end, now=now)
    report = view.report
    return render(
        request,
        "billing/savings.html",
        {
            "time_range": ranges.control(request.GET.copy(), chosen, errors),
            "span": ranges.span_text(chosen),
            "report": report,
            "total": report.caching_total,
            "comparison": ranges.DayRange(report.comparison_start, report.comparison_end),
            "hit_chart": charts.cache_hit_chart(report.hit_trend) if report.hit_trend else None,
            "listed": view.listed,
            "dismissed": view.dismissed,
            "can_dismiss": can(request.user, "admin"),
            "range_query": chosen.query(),
        },
    )


def _back_to_savings(request: HttpRequest) -> HttpResponse:
    """The savings page over the range the form was posted from (only the range's own
    parameters are carried, so the redirect stays on this page)."""
    kept = {name: request.POST[name][:40] for name in ranges.RANGE_PARAMS if request.POST.get(name)}
    return redirect(f"/costs/savings/?{urlencode(kept)}" if kept else "/costs/savings/")


@require_POST
@role_required("admin")
def savings_dismiss(request: HttpRequest, key: str) -> HttpResponse:
    try:
        services.recommendation_dismiss(
            key=key,
            by=request.user.get_username(),
            note=request.POST.get("note", "").replace("\x00", "").strip(),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Recommendation dismissed: it is listed under Dismissed.")
    return _back_to_savings(request)


@require_POST
@role_required("admin")
def savings_restore(request: HttpRequest, key: str) -> HttpResponse:
    if services.recommendation_restore(key=key):
        messages.success(request, "Recommendation listed again.")
    return _back_to_savings(request)


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
    # A month with neither AI usage nor an allocation run says so: its files hold a header and
    # no charge (a UX review found twelve alike links, eight of them empty). What month_cost
    # would find for each, in two queries for the twelve months.
    used = usage_selectors.daily_token_cost(start=months[-1], end=periods.month_last_day(months[0]))
    with_usage = {periods.month_of(day) for day in used} | set(allocation_statuses(months))
    empty = set(months) - with_usage
    return render(
        request,
        "billing/reports.html",
        {
            "months": months,
            "empty": empty,
            "current": months[0],
            "formats": REPORT_FORMAT_LABELS,
        },
    )


@role_required("costs")
def report_download(request: HttpRequest, period: str, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404("Unknown report format")
    try:
        month_start = periods.month_parse(period)
    except periods.PeriodError as exc:
        raise Http404(str(exc)) from exc
    try:
        return report_file(connection.tenant, month_start, fmt)
    except RawEventsExpired as exc:
        return render(
            request,
            "billing/report_expired.html",
            {"month": month_start, "message": str(exc)},
            status=410,
        )


# Prepaid commitments


@dataclass(frozen=True)
class CommitmentRow:
    status: CommitmentStatus
    chart: dict[str, object]
    chart_id: str


def _burndown(status: CommitmentStatus) -> dict[str, object]:
    amount = status.commitment.amount
    start = status.commitment.start_date
    actual = [(start - timedelta(days=1), amount)] if status.drawdown.days else []
    actual += [(d.day, d.remaining) for d in status.drawdown.days]
    ends = status.exhaustion
    # The forecast starts from the last actual point so the lines join.
    join = actual[-1:] if ends.mean_path else []
    return charts.burndown_chart(
        actual,
        join + list(ends.mean_path),
        join + list(ends.lo80_path),
        join + list(ends.hi80_path),
    )


@role_required("costs")
def commitments(request: HttpRequest) -> HttpResponse:
    """The tenant's prepaid commitments and credits: consumed, remaining, the burn-down (actual
    and forecast with its 80% band) and the forecast exhaustion date with its interval."""
    statuses = commitments_status_now(tenant=connection.tenant, now=timezone.now())
    rows = [
        CommitmentRow(status=s, chart=_burndown(s), chart_id=f"burndown-{s.commitment.pk}")
        for s in statuses
    ]
    return render(request, "billing/commitments.html", {"rows": rows})


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
