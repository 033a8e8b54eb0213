"""Tenant pages over usage: run history (filters, keyset pages, CSV); the active runs page is
``web.dashboards.active_runs`` (it shows billing's run guard). Thin:
selectors do the work."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta

from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from factory_portal import charts, periods, ranges
from factory_portal.accounts.permissions import can, role_required
from factory_portal.spreadsheets import csv_cell
from factory_portal.tenants.connection import connection_zone
from usage import selectors
from usage.domain.errors import FINGERPRINT_RE
from usage.domain.limits import FAILURE_TYPE_LENGTH, MODEL_LENGTH, STEP_NAME_LENGTH
from usage.models import RunStatus
from usage.selectors import reporting
from usage.selectors import steps as step_selectors


def _filters(
    request: HttpRequest,
    problems: list[str] | None = None,
    choices: selectors.RunFilterChoices | None = None,
) -> selectors.RunFilters:
    """The run-history filters of the query, canonical (any letter case; ``choices`` saves
    reading the known values again); a date that cannot be used is left out, with the reason
    added to ``problems``. ``range=`` (a preset of the analytics pages' range control, or
    ``custom`` with ``from``/``to``) sets both days, so a saved or shared link keeps moving with
    the calendar."""
    get = request.GET

    def day(name: str) -> date | None:
        try:
            return periods.day_parse(get[name]) if get.get(name) else None
        except periods.PeriodError as exc:
            if problems is not None:
                problems.append(f"{exc} The filter was left out.")
            return None

    def text(name: str, limit: int) -> str:
        # PostgreSQL text cannot hold NUL: such a value matches nothing anyway.
        return get.get(name, "").replace("\x00", "").strip()[:limit]

    status = get.get("status", "")
    canonical = selectors.status_canonical(status)
    if status and canonical is None and problems is not None:
        problems.append(f"{status[:40]!r} is not a run status. The filter was left out.")
    if get.get("range"):
        today = periods.local_date(timezone.now(), connection_zone())
        chosen, range_problems = ranges.range_parse(get, today=today)
        if problems is not None:
            problems.extend(range_problems)
        start, end = chosen.start, chosen.end
    else:
        start, end = day("from"), day("to")
        if start and end and start > end:  # nothing could match: say so rather than list none
            if problems is not None:
                problems.append(
                    f"The first day ({start}) is after the last ({end}). The days were left out."
                )
            start = end = None
    filters = selectors.RunFilters(
        status=canonical or "",
        project=text("project", 100),
        template=text("template", 200),
        run_type=text("run_type", 64),
        start=start,
        end=end,
        search=text("q", 128),
        step=text("step", STEP_NAME_LENGTH),
        failure_type=text("failure_type", FAILURE_TYPE_LENGTH),
        model=text("model", MODEL_LENGTH),
        error=_error_group(get.get("error", ""), problems),
    )
    return selectors.run_filters_canonical(filters, choices)


def _error_group(raw: str, problems: list[str] | None) -> str:
    """An error group's fingerprint (run history's link from the errors pages, in any letter
    case); anything else is left out with the reason (the CSV then refuses it)."""
    value = raw.strip().lower()
    if not value or FINGERPRINT_RE.fullmatch(value):
        return value
    if problems is not None:
        problems.append(f"{raw[:40]!r} is not an error group. The filter was left out.")
    return ""


def _sort(request: HttpRequest) -> str:
    sort = request.GET.get("sort", "newest")
    return sort if sort in selectors.RUN_SORTS else "newest"


def _cursor(raw: str, sort: str) -> selectors.Cursor | None:
    """A page's ``after`` or ``before`` position for this sort; anything else (none, or one of
    another sort) starts over at the first page."""
    if not raw:
        return None
    try:
        return selectors.cursor_parse(raw, sort)
    except ValueError:
        return None


SORT_LABELS = {
    "newest": "newest first",
    "oldest": "oldest first",
    "longest": "longest first",
    "shortest": "shortest first",
    "costliest": "highest total cost first",
    "cheapest": "lowest total cost first",
    "ai_costliest": "highest AI cost first",
    "ai_cheapest": "lowest AI cost first",
    "infra_costliest": "highest infrastructure cost first",
    "infra_cheapest": "lowest infrastructure cost first",
}
# The sortable columns: (sort when first clicked, the other direction).
SORT_COLUMNS = {
    "requested": ("newest", "oldest"),
    "duration": ("longest", "shortest"),
    "ai_cost": ("ai_costliest", "ai_cheapest"),
    "infra_cost": ("infra_costliest", "infra_cheapest"),
    "total_cost": ("costliest", "cheapest"),
}


def _sort_headers(query: QueryDict, sort: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (the other direction when it is the
    current sort; back to the first page) and its ``aria-sort``."""
    headers = {}
    for name, (first, other) in SORT_COLUMNS.items():
        chosen = other if sort == first else first
        params = query.copy()
        params["sort"] = chosen
        current = sort in (first, other)
        descending = selectors.RUN_SORTS[sort][1]
        headers[name] = {
            "href": "?" + params.urlencode(),
            "aria": ("descending" if descending else "ascending") if current else "none",
            "title": f"Sort by {SORT_LABELS[chosen]}",
        }
    return headers


@role_required("runs")
def run_list(request: HttpRequest) -> HttpResponse:
    """Run history: filters, a count, keyset pages both ways (``after``/``before`` cursors),
    sortable columns; times in the tenant's zone."""
    problems: list[str] = []
    # The filters first: a value they name that the kept choices lack reads them again, so the
    # selects below offer it.
    filters = _filters(request, problems)
    choices = selectors.run_filter_choices()
    sort = _sort(request)
    get = request.GET
    page = selectors.runs_window(
        filters,
        after=_cursor(get.get("after", ""), sort),
        before=_cursor(get.get("before", ""), sort),
        sort=sort,
    )
    query = get.copy()
    for name in ("after", "before"):
        query.pop(name, None)
    without_error = query.copy()
    without_error.pop("error", None)

    def at(name: str, cursor: selectors.Cursor | None) -> str | None:
        if cursor is None:
            return None
        params = query.copy()
        params[name] = selectors.cursor_text(cursor)
        return params.urlencode()

    return render(
        request,
        "usage/runs.html",
        {
            "rows": page.rows,
            "count": selectors.runs_count(filters, sort=sort),
            "filters": filters,
            "filtered": filters != selectors.RunFilters(),
            "errors": problems,
            "choices": choices,
            "statuses": RunStatus.values,
            "sorts": SORT_LABELS,
            "sort": sort,
            "sort_label": SORT_LABELS[sort],
            "headers": _sort_headers(query, sort),
            "next_query": at("after", page.next_cursor),
            "previous_query": at("before", page.previous_cursor),
            "first_query": query.urlencode() if page.previous_cursor is not None else None,
            "query": query.urlencode(),
            "without_error": without_error.urlencode(),
            "zone": connection_zone(),
        },
    )


@role_required("runs")
def run_list_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Run history's rows as CSV, by the same filters and sort. A filter the page would leave
    out (a day that is not one, a first day after the last, an unknown status or range) is a
    400 naming it: a download, often made by a script, must not widen to every run unseen."""
    problems: list[str] = []
    filters = _filters(request, problems)
    if problems:
        return HttpResponse(
            "The runs were not exported:\n" + "\n".join(problems) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            [
                "run_id",
                "project",
                "template",
                "run_type",
                "status",
                "requested_at",
                "duration_ms",
                "failure_type",
                "ai_cost_usd",
                "infrastructure_cost_usd",
                "total_cost_usd",
            ]
        )
        for row in selectors.runs_iter(filters, sort=_sort(request)):
            yield writer.writerow(
                [
                    csv_cell(row.run_id),
                    csv_cell(row.project),
                    csv_cell(row.template),
                    csv_cell(row.run_type),
                    row.status,
                    row.requested_at.isoformat(),
                    row.duration_ms,
                    csv_cell(row.failure_type),
                    row.ai_cost,
                    row.infra_cost,
                    row.total_cost,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="runs.csv"'
    return response


REPORT_MAX_DAYS = 366
MODEL_MAX_DAYS = 31  # a model-filtered usage report reads the runs table
# Without a range in the URL, a weekly or monthly report shows more days than a daily one.
REPORT_DEFAULT_RANGE = {"day": "30d", "week": "90d", "month": "90d"}
USAGE_FILTER_LABELS = {
    "project": "Project",
    "template": "Template",
    "run_type": "Run type",
    "model": "Model",
}


def _period_range(key: str, grain: str, within: ranges.DayRange) -> ranges.DayRange:
    """The days of report period ``key`` inside the report's range (a week or month cut at the
    range's ends): what a drill-down from that period opens."""
    if grain == "month":
        first = periods.month_parse(key)
        last = periods.month_last_day(first)
    else:
        first = date.fromisoformat(key)
        last = first + timedelta(days=6 if grain == "week" else 0)
    return ranges.DayRange(max(first, within.start), min(last, within.end))


def _usage_filters(request: HttpRequest) -> reporting.UsageFilters:
    """The report's filters; a value that is not among the choices still filters (a shared link
    to a template that has no runs yet shows nothing rather than everything)."""
    return reporting.UsageFilters(
        **{
            name: request.GET.get(name, "").replace("\x00", "").strip()[:200]
            for name in USAGE_FILTER_LABELS
        }
    )


@role_required("runs")
def usage_report(request: HttpRequest) -> HttpResponse:
    """Run volume, run types, templates, success and duration trends, tokens by model (the
    tenant's days), for the shared time range and the project, template, run type and model
    filters; every figure that stands for runs opens them in run history."""
    zone = connection_zone()
    today = periods.local_date(timezone.now(), zone)
    grain = request.GET.get("grain", "day")
    errors: list[str] = []
    if grain not in reporting.GRAINS:
        errors.append(f"grain={grain[:20]!r} is not day, week or month; showing days.")
        grain = "day"
    filters = _usage_filters(request)
    # A model filter reads the runs table (the rollups do not know a run's models): a month.
    chosen, problems = ranges.range_parse(
        request.GET,
        today=today,
        default=REPORT_DEFAULT_RANGE[grain] if not filters.model else "30d",
        max_days=MODEL_MAX_DAYS if filters.model else REPORT_MAX_DAYS,
    )
    choices = reporting.usage_filter_choices()
    report = reporting.usage_report(
        start=chosen.start, end=chosen.end, grain=grain, zone=zone, filters=filters
    )
    drill = can(request.user, "runs")
    run_filters = {
        "project": filters.project,
        "template": filters.template,
        "run_type": filters.run_type,
        "model": filters.model,
    }

    def runs(days: ranges.DayRange, **more: str) -> str:
        """Run history for these days and filters; nothing for runs without a template or run
        type, which run history cannot pick out."""
        query = {**run_filters, **more}
        if not drill or reporting.NONE_LABEL in query.values():
            return ""
        return ranges.runs_href(days, **query)

    period_rows = []
    for key, p in report.periods.items():
        days = _period_range(key, grain, chosen)
        period_rows.append(
            {
                "key": key,
                "p": p,
                "p50": p.percentile_ms(0.5),
                "p95": p.percentile_ms(0.95),
                "href": runs(days),
                "succeeded_href": runs(days, status=RunStatus.SUCCEEDED),
                "failed_href": runs(days, status=RunStatus.FAILED),
                "status_hrefs": {s: runs(days, status=s) for s in RunStatus.values},
            }
        )
    kept = [(k, v) for k, v in request.GET.items() if k in ("grain", *ranges.RANGE_PARAMS)]
    return render(
        request,
        "usage/usage_report.html",
        {
            "report": report,
            "grains": reporting.GRAINS,
            "errors": errors,
            "time_range": ranges.control(request.GET, chosen, problems),
            "range_fields": list(chosen.query().items()),
            "filter_fields": [
                (name, label, choices[name], getattr(filters, name))
                for name, label in USAGE_FILTER_LABELS.items()
            ],
            "filtered": bool(filters.query()),
            "clear_query": urlencode({**chosen.query(), "grain": grain}),
            "drill": drill,
            "runs_href": runs(chosen),
            "period_rows": period_rows,
            "run_type_rows": [
                (name, n, runs(chosen, run_type=name)) for name, n in report.run_types.items()
            ],
            "template_rows": [(t, runs(chosen, template=t.template)) for t in report.templates],
            "model_rows": [
                (
                    *totals,
                    urlencode({**dict(kept), **filters.query(), "model": totals[0]}),
                    runs(chosen, model=totals[0]),
                )
                for totals in report.model_totals
            ],
            "recent": reporting.recent_success_rates(now=timezone.now()),
            "volume_chart": charts.run_volume_chart(
                report,
                links={r["key"]: r["status_hrefs"] for r in period_rows} if drill else None,
            )
            if report.total_runs
            else None,
            "trend_chart": charts.success_duration_chart(
                report, links={r["key"]: r["href"] for r in period_rows} if drill else None
            )
            if report.total_runs
            else None,
            "tokens_chart": charts.tokens_chart(report.tokens_by_model)
            if report.tokens_by_model
            else None,
        },
    )


def _steps_range(get: QueryDict, today: date) -> tuple[ranges.DayRange, list[str]]:
    """The shared range; an older ``?days=N`` link reads as the last N days."""
    raw_days = get.get("days", "")
    if raw_days and not get.get("range") and not (get.get("from") or get.get("to")):
        if (
            raw_days.isascii()
            and raw_days.isdigit()
            and 1 <= int(raw_days) <= step_selectors.MAX_DAYS
        ):
            days = int(raw_days)
            preset = f"{days}d"
            if preset in ranges.PRESET_LABELS:
                return ranges.preset_range(preset, today), []
            return ranges.DayRange(today - timedelta(days=days - 1), today), []
        default = ranges.preset_range(ranges.DEFAULT, today)
        return default, [
            f"days must be a whole number of days from 1 to {step_selectors.MAX_DAYS};"
            f" showing the last {default.length} days."
        ]
    return ranges.range_parse(get, today=today, max_days=step_selectors.MAX_DAYS)


STEP_SORT_LABELS = {
    "rework_rate": "rework rate",
    "failure_rate": "failure rate",
    "first_pass_rate": "first-pass success",
    "p95_ms": "p95 duration",
    "ai_cost": "AI cost",
    "runs": "runs",
}


@role_required("runs")
def steps(request: HttpRequest) -> HttpResponse:
    """Where pipelines fail and rework most: per step (or template and step) for a range of the
    tenant's days, against the previous range of equal length."""
    today = periods.local_date(timezone.now(), connection_zone())
    get = request.GET
    errors: list[str] = []
    chosen, problems = _steps_range(get, today)
    start, end = chosen.start, chosen.end
    grouping = get.get("by", "step")
    grouping = grouping if grouping in step_selectors.GROUPINGS else "step"
    sort = get.get("sort", "rework_rate")
    sort = sort if sort in step_selectors.SORTS else "rework_rate"
    template = get.get("template", "").replace("\x00", "").strip()[:200]
    report = step_selectors.step_report(
        start=start, end=end, grouping=grouping, sort=sort, template=template
    )
    query = {**chosen.query(), "by": grouping}
    if template:
        query["template"] = template
    chart_rows = [
        (
            f"{r.template} · {r.step}" if r.template is not None else r.step,
            r.current.rework_rate,
            r.current.first_pass_rate,
        )
        for r in report.rows[:30]
    ]
    return render(
        request,
        "usage/steps.html",
        {
            "report": report,
            "errors": errors,
            "time_range": ranges.control(get, chosen, problems),
            "sort_label": STEP_SORT_LABELS[sort],
            "sorts": STEP_SORT_LABELS,
            "sort": sort,
            "grouping": grouping,
            "template": template,
            "query": urlencode(query),
            "run_query": {"from": start.isoformat(), "to": end.isoformat()},
            "chart": charts.step_rates_chart(
                chart_rows,
                links=[
                    ranges.runs_href(
                        chosen,
                        step=r.step,
                        template=r.template if r.template is not None else template,
                    )
                    for r in report.rows[:30]
                ]
                if can(request.user, "runs")
                else None,
            )
            if chart_rows
            else None,
        },
    )
