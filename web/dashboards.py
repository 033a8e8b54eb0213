"""Tenant pages that combine usage and billing (overview, run details). Thin: selectors from
``usage`` and ``billing`` do the work; this module only composes them (``usage`` itself never
imports ``billing``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.domain.allocation import round_lines
from billing.domain.forecasting import method_label as forecast_method_label
from billing.models import CostForecast
from billing.selectors import guard as guard_selectors
from billing.selectors.budgets import budgets_status, month_end_expected
from billing.selectors.periods import allocation_statuses, month_cost
from billing.services import forecast_ensure
from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, role_required
from factory_portal.tenants.connection import connection_zone
from usage import selectors
from usage.selectors import reporting, run_trace
from usage.selectors.overview import overview as usage_overview
from web.onboarding import onboarding_checklist


def _adding_up(rows: list[tuple[str, Decimal]], total: Decimal) -> list[tuple[str, Decimal]]:
    """The top rows in cents that add up to ``total`` in cents (the AI cost figure above them):
    what the rows leave of it as a last row named "" (the rest, when the list is cut), and
    every row rounded by largest remainder. Rounded one by one, four projects read 732.56
    against a figure of 732.57 (a review found it)."""
    if not rows:
        return []
    rest = total - sum((cost for _, cost in rows), Decimal(0))
    named = [*rows, ("", rest)] if rest else list(rows)
    cents = round_lines([cost for _, cost in named])
    return [(name, amount) for (name, _), amount in zip(named, cents, strict=True)]


@role_required("signed_in")
def overview(request: HttpRequest) -> HttpResponse:
    """Everyone's landing page, showing only the areas the role may open (``portal_can`` in the
    template): cost, forecast and budgets for ``costs``; runs and durations for ``runs``. The
    range control (this month by default) chooses the days of the chart, the AI cost, runs and
    top lists; the month's total cost, forecast and budgets are this month's whatever the range.
    """
    tenant = connection.tenant
    now = timezone.now()
    zone = connection_zone()
    today = periods.local_date(now, zone)
    chosen, problems = ranges.range_parse(request.GET, today=today, default="this_month")
    data = usage_overview(now=now, zone=zone, start=chosen.start, end=chosen.end)
    linked = can(request.user, "runs")
    context: dict[str, object] = {
        "overview": data,
        "tenant": tenant,
        "time_range": ranges.control(request.GET, chosen, problems),
        "span": ranges.span_text(chosen),
        "status_rows": [
            (status, n, ranges.runs_href(chosen, status=status) if linked and n else "")
            for status, n in data.status_counts.items()
        ],
        "top_projects": [
            (name, cost, ranges.runs_href(chosen, project=name) if linked and name else "")
            for name, cost in _adding_up(data.top_projects, data.tokens.cost)
        ],
        "top_models": [
            (name, cost, ranges.runs_href(chosen, model=name) if linked and name else "")
            for name, cost in _adding_up(data.top_models, data.tokens.cost)
        ],
        "onboarding": onboarding_checklist(request),
        # The footer's freshness (``web.context_processors``), read above already.
        "portal_freshness": data.complete_until,
    }
    if can(request.user, "costs"):
        # The tenant's month cost, forecast and reservation serve its budget too (read once).
        costs = month_cost(tenant=tenant, month=today)
        forecast = forecast_ensure(today=today)
        reservation = guard_selectors.reservation()
        budgets = budgets_status(tenant=tenant, now=now, month_costs=costs, forecasts=[forecast])
        context["month_cost"] = costs
        context["chart"] = _daily_cost_chart(chosen, today, forecast, linked=linked)
        context["forecast"] = forecast
        context["forecast_method"] = forecast_method_label(forecast.method) if forecast else ""
        if forecast is not None:  # the month's AI cost in all, today counted once
            today_actual = sum(
                selectors.daily_token_cost(start=today, end=today).values(), Decimal(0)
            )
            context["month_end"] = month_end_expected(
                forecast, spent=costs.ai, today_actual=today_actual, today=today
            )
        context["budgets"] = budgets
        context["reserved_budgets"] = guard_selectors.budgets_reserved(budgets, {"": reservation})
        context["reservation"] = reservation
    if linked:
        timed = sum(data.status_counts.get(s, 0) for s in reporting.TIMED_STATUSES)
        context["durations"] = reporting.range_durations(
            chosen.start, chosen.end, zone, timed=timed
        )
    return render(request, "usage/overview.html", context)


def _daily_cost_chart(
    chosen: ranges.DayRange, today: date, forecast: CostForecast | None, *, linked: bool
) -> dict[str, object] | None:
    """AI cost per day and project over the range, each bar opening that day's runs of the
    project (``linked``); when the range reaches today, the forecast from today to the end of
    this month (inside the forecast's horizon; never past the month). None when there is
    nothing to draw (a new tenant gets a sentence, not an empty axis)."""
    by_project = selectors.daily_cost_by_project(start=chosen.start, end=chosen.end)
    month_end = periods.month_last_day(today)
    upcoming = (
        [row for row in forecast.days if today <= row.day <= month_end]
        if forecast and chosen.contains(today)
        else []
    )
    if not by_project and not upcoming:
        return None
    links = (
        {
            project: [
                ranges.runs_href(ranges.DayRange(day, day), project=project) for day in chosen.days
            ]
            for project in by_project
        }
        if linked
        else None
    )
    return charts.daily_cost_chart(by_project, chosen.days, upcoming, links)


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
            "untimed_calls": run_trace.untimed_llm_calls(run),
            "logs": run_trace.run_logs(
                run,
                level=request.GET.get("level", ""),
                page=_page_number(request.GET.get("page")),
            ),
            "levels": run_trace.LEVELS,
            "guard": guard_selectors.run_guard(run.run_id),
        },
    )


ACTIVE_LIMIT = 100


@role_required("runs")
def active_runs(request: HttpRequest) -> HttpResponse:
    """Queued and running runs with their cost so far and, under a run budget, their projected
    total and guard state (refreshed by the page every 5 s)."""
    runs = selectors.active_runs(limit=ACTIVE_LIMIT)
    guards = guard_selectors.run_guards_stored(r.run_id for r in runs)
    context = {
        "runs": runs,
        "rows": [(run, guards.get(run.run_id)) for run in runs],
        "guarded": bool(guards),
        "counts": selectors.active_run_counts(),
        "now": timezone.now(),
    }
    if request.GET.get("fragment"):
        return render(request, "usage/active_rows.html", context)
    return render(request, "usage/active.html", context)
