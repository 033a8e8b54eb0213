"""Tenant pages over errors: ``/errors/`` (error groups over a range of the tenant's days) and
``/errors/<fingerprint>/`` (one group). Thin: parse the query, call ``usage.selectors.errors``,
render; the charts come from ``factory_portal.charts``."""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from factory_portal import charts, periods
from factory_portal.accounts.permissions import role_required
from factory_portal.tenants.connection import connection_zone
from usage.selectors import errors as error_selectors

DEFAULT_DAYS = 14
PER_PAGE = 25
CHARTED_GROUPS = 6
FINGERPRINT_RE = re.compile(r"[0-9a-f]{32}")
SORT_LABELS = {"frequent": "most frequent", "newest": "newest", "runs": "most runs affected"}


def error_range(request: HttpRequest, problems: list[str]) -> tuple[date, date]:
    """The range of the query (``from``, ``to``: the tenant's days, inclusive); the default (the
    last 14 days) for what cannot be used, with the reason added to ``problems``."""
    today = periods.local_date(timezone.now(), connection_zone())

    def day(name: str, default: date) -> date:
        raw = request.GET.get(name, "")
        if not raw:
            return default
        try:
            return periods.day_parse(raw)
        except periods.PeriodError as exc:
            problems.append(f"{exc} Showing the default range.")
            return default

    end = day("to", today)
    start = day("from", end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        problems.append("The start date is after the end date; showing the default range.")
        end, start = today, today - timedelta(days=DEFAULT_DAYS - 1)
    if (end - start).days + 1 > error_selectors.MAX_DAYS:
        problems.append(f"A range covers at most {error_selectors.MAX_DAYS} days; the start moved.")
        start = end - timedelta(days=error_selectors.MAX_DAYS - 1)
    return start, end


def _failing_runs_query(start: date, end: date, templates: list[str], count: int) -> str:
    query = {"status": "Failed", "from": start.isoformat(), "to": end.isoformat()}
    if count == 1:
        query["template"] = templates[0]
    return urlencode(query)


def _page_number(raw: str) -> int:
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@role_required("runs")
def error_groups(request: HttpRequest) -> HttpResponse:
    problems: list[str] = []
    start, end = error_range(request, problems)
    sort = request.GET.get("sort", "frequent")
    sort = sort if sort in error_selectors.ERROR_SORTS else "frequent"
    result = error_selectors.error_groups(
        start=start,
        end=end,
        sort=sort,
        page=_page_number(request.GET.get("page", "")),
        per_page=PER_PAGE,
    )
    page = None
    if result.rows:
        page = Paginator(range(result.total), PER_PAGE).page(min(result.page, result.pages))
    rows = [
        {
            "group": row,
            "sparkline": charts.sparkline_points(row.trend),
            "failing_runs": _failing_runs_query(start, end, row.templates, row.template_count),
        }
        for row in result.rows
    ]
    charted = result.rows[:CHARTED_GROUPS]
    chart = (
        charts.error_trend_chart(
            result.days,
            {f"{r.type or 'error'}: {r.message[:40]}": r.trend for r in charted},
        )
        if charted
        else None
    )
    range_query = urlencode({"from": start.isoformat(), "to": end.isoformat()})
    return render(
        request,
        "usage/errors.html",
        {
            "result": result,
            "rows": rows,
            "page": page,
            "chart": chart,
            "charted": len(charted),
            "errors": problems,
            "sorts": SORT_LABELS,
            "sort": sort,
            "sort_label": SORT_LABELS[sort],
            "range_query": range_query,
        },
    )


@role_required("runs")
def error_group(request: HttpRequest, fingerprint: str) -> HttpResponse:
    if not FINGERPRINT_RE.fullmatch(fingerprint):
        raise Http404("No such error group.")
    problems: list[str] = []
    start, end = error_range(request, problems)
    detail = error_selectors.error_group(fingerprint=fingerprint, start=start, end=end)
    if detail is None:
        raise Http404("No such error group.")
    templates = sorted({b.template for b in detail.breakdown if b.template})
    return render(
        request,
        "usage/error_group.html",
        {
            "detail": detail,
            "errors": problems,
            "chart": charts.error_trend_chart(detail.days, {"errors": detail.trend})
            if detail.count
            else None,
            "failing_runs": _failing_runs_query(start, end, templates, len(templates)),
            "range_query": urlencode({"from": start.isoformat(), "to": end.isoformat()}),
        },
    )
