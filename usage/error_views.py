"""Tenant pages over errors: ``/errors/`` (error groups over a range of the tenant's days) and
``/errors/<fingerprint>/`` (one group). Thin: parse the query, call ``usage.selectors.errors``,
render; the charts come from ``factory_portal.charts``."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, role_required
from factory_portal.tenants.connection import connection_zone
from usage.domain.errors import FINGERPRINT_RE
from usage.selectors import errors as error_selectors

DEFAULT_RANGE = "30d"
PER_PAGE = 25
CHARTED_GROUPS = 6
SORT_LABELS = {"frequent": "most frequent", "newest": "newest", "runs": "most runs affected"}


def error_range(request: HttpRequest, problems: list[str]) -> ranges.DayRange:
    """The shared time range of the query (the tenant's days, inclusive); the default (the last
    30 days) for what cannot be used, with the reason added to ``problems``."""
    today = periods.local_date(timezone.now(), connection_zone())
    chosen, found = ranges.range_parse(
        request.GET, today=today, default=DEFAULT_RANGE, max_days=error_selectors.MAX_DAYS
    )
    problems.extend(found)
    return chosen


def _runs_with(request: HttpRequest, days: ranges.DayRange, fingerprint: str) -> str:
    """Run history's runs of these days that reported errors of the group (``error=``), failed
    or not (a run that succeeded after a retry reported it too); "" for a user who may not open
    run history. It linked the days' failed runs, most without the error (a UX review)."""
    if not can(request.user, "runs"):
        return ""
    return ranges.runs_href(days, error=fingerprint)


def _series_labels(groups: list[error_selectors.ErrorGroupRow]) -> list[str]:
    """A chart label for each group: its type and the start of its message, and where groups
    share those (messages alike in their first 40 characters), their place in the table, so
    that no series replaces another (a review found three groups drawn as one)."""
    labels = [f"{g.type or 'error'}: {g.message[:40]}" for g in groups]
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"{label} (#{n})" if label in repeated else label for n, label in enumerate(labels, 1)]


def _page_number(raw: str) -> int:
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@role_required("runs")
def error_groups(request: HttpRequest) -> HttpResponse:
    problems: list[str] = []
    chosen = error_range(request, problems)
    start, end = chosen.start, chosen.end
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
            "failing_runs": _runs_with(request, chosen, row.fingerprint),
        }
        for row in result.rows
    ]
    charted = result.rows[:CHARTED_GROUPS]
    labels = _series_labels(charted)
    chart = (
        charts.error_trend_chart(
            result.days,
            {label: r.trend for label, r in zip(labels, charted, strict=True)},
            links={
                label: [
                    _runs_with(request, ranges.DayRange(day, day), r.fingerprint)
                    for day in result.days
                ]
                for label, r in zip(labels, charted, strict=True)
            },
        )
        if charted
        else None
    )
    range_query = urlencode(chosen.query())
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
            "time_range": ranges.control(request.GET, chosen, problems),
        },
    )


@role_required("runs")
def error_group(request: HttpRequest, fingerprint: str) -> HttpResponse:
    if not FINGERPRINT_RE.fullmatch(fingerprint):
        raise Http404("No such error group.")
    problems: list[str] = []
    chosen = error_range(request, problems)
    detail = error_selectors.error_group(
        fingerprint=fingerprint, start=chosen.start, end=chosen.end
    )
    if detail is None:
        raise Http404("No such error group.")
    return render(
        request,
        "usage/error_group.html",
        {
            "detail": detail,
            "errors": problems,
            "chart": charts.error_trend_chart(
                detail.days,
                {"errors": detail.trend},
                links={
                    "errors": [
                        _runs_with(request, ranges.DayRange(d, d), fingerprint) for d in detail.days
                    ]
                },
            )
            if detail.count
            else None,
            "failing_runs": _runs_with(request, chosen, fingerprint),
            "range_query": urlencode(chosen.query()),
            "time_range": ranges.control(request.GET, chosen, problems),
        },
    )
