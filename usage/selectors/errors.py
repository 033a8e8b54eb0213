"""Error groups over a range of the tenant's days (its time zone), and one group in detail.

Read-only, current tenant schema. Counts, runs, templates, steps and trends over a range come
from the daily rollup ``ErrorGroupDaily`` (runs affected over a range are the sum of each day's
distinct runs); what a group is (type, normalised message, top frame) and when it was first seen
at all come from ``ErrorGroup``; example runs, messages and stack traces from ``SpanError`` by its
(fingerprint, time) index. Work is bounded: one aggregate over the range's rollup rows for the
listing (a page of groups), then trends and example runs for that page's groups only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import ceil

from factory_portal import periods
from factory_portal.db_routing import read_connection
from factory_portal.tenants.connection import connection_zone
from usage.models import ErrorGroup, ErrorGroupDaily, SpanError

ERROR_SORTS = {
    "frequent": "n_errors DESC, last_seen DESC, fingerprint",
    "newest": "last_seen DESC, fingerprint",
    "runs": "n_runs DESC, n_errors DESC, fingerprint",
}
MAX_DAYS = 366
LISTED_NAMES = 5  # templates and steps named per group in the listing
EXAMPLE_RUNS = 3
EXAMPLE_SCAN = 50  # errors read per group to find its example runs
DETAIL_EXAMPLE_RUNS = 20
DETAIL_BREAKDOWN_ROWS = 50


@dataclass(frozen=True)
class ErrorGroupRow:
    fingerprint: str
    type: str
    message: str  # normalised
    top_frame: str
    count: int  # errors in the range
    runs: int  # runs affected in the range
    first_seen: datetime  # in the range
    last_seen: datetime
    first_seen_ever: datetime
    templates: list[str]
    template_count: int
    steps: list[str]
    step_count: int
    trend: list[int] = field(default_factory=list)  # errors per day of the range
    example_runs: list[str] = field(default_factory=list)  # newest first


@dataclass(frozen=True)
class ErrorGroupsPage:
    start: date
    end: date  # inclusive
    days: list[date]
    sort: str
    page: int
    pages: int
    total: int  # groups with an error in the range
    errors: int  # errors in the range
    rows: list[ErrorGroupRow]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return periods.local_bounds(start, end + timedelta(days=1), connection_zone())


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


# The groups of a page, from the daily rollup.
GROUPS_SQL = """
SELECT fingerprint, sum(errors)::bigint AS n_errors, min(first_seen) AS first_seen,
    max(last_seen) AS last_seen, sum(day_runs)::bigint AS n_runs,
    count(*) OVER () AS n_groups, sum(sum(errors)) OVER () AS n_all
FROM usage_errorgroupdaily
WHERE day >= %(start)s AND day <= %(end)s
GROUP BY fingerprint
ORDER BY {order}
LIMIT %(limit)s OFFSET %(offset)s
"""

# What only the page's groups need: templates and steps.
DETAILS_SQL = """
SELECT fingerprint,
    (array_agg(DISTINCT template) FILTER (WHERE template <> ''))[1:%(names)s],
    count(DISTINCT template) FILTER (WHERE template <> ''),
    (array_agg(DISTINCT step_name) FILTER (WHERE step_name <> ''))[1:%(names)s],
    count(DISTINCT step_name) FILTER (WHERE step_name <> '')
FROM usage_errorgroupdaily
WHERE fingerprint = ANY(%(prints)s) AND day >= %(start)s AND day <= %(end)s
GROUP BY fingerprint
"""

TREND_SQL = """
SELECT fingerprint, day, sum(errors)::bigint
FROM usage_errorgroupdaily
WHERE fingerprint = ANY(%(prints)s) AND day >= %(start)s AND day <= %(end)s
GROUP BY 1, 2
"""

# The newest errors of each group (an index scan per group, bounded), for its newest runs.
EXAMPLES_SQL = """
SELECT g.fingerprint, x.run_id
FROM unnest(%(prints)s::text[]) AS g(fingerprint)
CROSS JOIN LATERAL (
    SELECT r.run_id, e.occurred_at FROM usage_spanerror e JOIN usage_run r ON r.id = e.run_id
    WHERE e.fingerprint = g.fingerprint AND e.occurred_at >= %(start)s
        AND e.occurred_at < %(end)s
    ORDER BY e.occurred_at DESC
    LIMIT %(scan)s
) x
ORDER BY g.fingerprint, x.occurred_at DESC
"""


def error_groups(
    *,
    start: date,
    end: date,
    sort: str = "frequent",
    page: int = 1,
    per_page: int = 25,
    offset: int | None = None,
) -> ErrorGroupsPage:
    """The groups with errors on the tenant's days ``start <= day <= end``, ``per_page`` a page
    (page numbers from 1, or the first ``offset`` groups skipped; past the last: empty), sorted
    by ``sort`` (``ERROR_SORTS``)."""
    if sort not in ERROR_SORTS:
        raise ValueError(f"sort must be one of {', '.join(ERROR_SORTS)}")
    low, high = _bounds(start, end)
    params = {
        "start": start,
        "end": end,
        "names": LISTED_NAMES,
        "limit": per_page,
        "offset": (max(page, 1) - 1) * per_page if offset is None else max(offset, 0),
    }
    with read_connection().cursor() as cursor:
        cursor.execute(GROUPS_SQL.format(order=ERROR_SORTS[sort]), params)
        found = cursor.fetchall()
        prints = [row[0] for row in found]
        details: dict[str, tuple] = {}
        if prints:
            cursor.execute(DETAILS_SQL, {**params, "prints": prints})
            details = {row[0]: row[1:] for row in cursor.fetchall()}
    total = found[0][5] if found else _groups_in(start, end)
    errors = int(found[0][6]) if found else 0
    groups = {g.fingerprint: g for g in ErrorGroup.objects.filter(fingerprint__in=prints)}
    days = _days(start, end)
    trends = _trends(prints, days)
    examples = _examples(prints, low, high, EXAMPLE_RUNS)
    rows = []
    for fp, count, first, last, runs, _, _ in found:
        group = groups.get(fp)
        templates, n_templates, steps, n_steps = details.get(fp, ([], 0, [], 0))
        rows.append(
            ErrorGroupRow(
                fingerprint=fp,
                type=group.type if group else "",
                message=group.message if group else "",
                top_frame=group.top_frame if group else "",
                count=count,
                runs=runs,
                first_seen=first,
                last_seen=last,
                first_seen_ever=group.first_seen if group else first,
                templates=templates or [],
                template_count=n_templates,
                steps=steps or [],
                step_count=n_steps,
                trend=trends.get(fp, [0] * len(days)),
                example_runs=examples.get(fp, []),
            )
        )
    return ErrorGroupsPage(
        start=start,
        end=end,
        days=days,
        sort=sort,
        page=max(page, 1),
        pages=max(1, ceil(total / per_page)),
        total=total,
        errors=errors,
        rows=rows,
    )


def _groups_in(start: date, end: date) -> int:
    """Groups in the range when the page asked for is past the last one."""
    return (
        ErrorGroupDaily.objects.filter(day__gte=start, day__lte=end)
        .values("fingerprint")
        .distinct()
        .count()
    )


def _trends(prints: list[str], days: list[date]) -> dict[str, list[int]]:
    if not prints:
        return {}
    index = {day: n for n, day in enumerate(days)}
    trends = {fp: [0] * len(days) for fp in prints}
    with read_connection().cursor() as cursor:
        cursor.execute(TREND_SQL, {"prints": prints, "start": days[0], "end": days[-1]})
        for fp, day, count in cursor.fetchall():
            if day in index:
                trends[fp][index[day]] = count
    return trends


def _examples(prints: list[str], low: datetime, high: datetime, n: int) -> dict[str, list[str]]:
    """Up to ``n`` runs per group, newest first, among its newest ``EXAMPLE_SCAN`` errors."""
    if not prints:
        return {}
    examples: dict[str, list[str]] = {fp: [] for fp in prints}
    with read_connection().cursor() as cursor:
        cursor.execute(
            EXAMPLES_SQL, {"prints": prints, "start": low, "end": high, "scan": EXAMPLE_SCAN}
        )
        for fp, run_id in cursor.fetchall():
            runs = examples[fp]
            if len(runs) < n and run_id not in runs:
                runs.append(run_id)
    return examples


@dataclass(frozen=True)
class ErrorBreakdown:
    template: str
    step_name: str
    count: int
    runs: int
    last_seen: datetime


@dataclass(frozen=True)
class ErrorExample:
    run_id: str
    run_status: str
    occurred_at: datetime
    step_name: str
    attempt: int | None
    span_name: str
    message: str


@dataclass(frozen=True)
class ErrorGroupDetail:
    fingerprint: str
    type: str
    message: str  # normalised
    top_frame: str
    first_seen: datetime  # ever
    last_seen: datetime  # ever
    occurrences: int  # ever
    start: date
    end: date
    days: list[date]
    count: int  # in the range
    runs: int  # in the range
    trend: list[int]
    breakdown: list[ErrorBreakdown]  # by template and step, most errors first
    examples: list[ErrorExample]  # newest first
    sample_message: str  # the newest occurrence's own message and stack trace
    sample_stacktrace: str
    sample_source: str


def error_group(*, fingerprint: str, start: date, end: date) -> ErrorGroupDetail | None:
    """One group and its errors on the tenant's days ``start <= day <= end``; None when the
    tenant has no such group."""
    group = ErrorGroup.objects.filter(fingerprint=fingerprint).first()
    if group is None:
        return None
    low, high = _bounds(start, end)
    days = _days(start, end)
    errors = SpanError.objects.filter(
        fingerprint=fingerprint, occurred_at__gte=low, occurred_at__lt=high
    )
    breakdown = []
    count = runs = 0
    with read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(errors), 0)::bigint, coalesce(sum(day_runs), 0)::bigint"
            " FROM usage_errorgroupdaily WHERE fingerprint = %s AND day >= %s AND day <= %s",
            [fingerprint, start, end],
        )
        count, runs = cursor.fetchone() or (0, 0)
        cursor.execute(
            "SELECT template, step_name, sum(errors)::bigint, sum(runs)::bigint, max(last_seen)"
            " FROM usage_errorgroupdaily WHERE fingerprint = %s AND day >= %s AND day <= %s"
            " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %s",
            [fingerprint, start, end, DETAIL_BREAKDOWN_ROWS],
        )
        breakdown = [ErrorBreakdown(*row) for row in cursor.fetchall()]
    examples = [
        ErrorExample(
            run_id=e.run.run_id,
            run_status=e.run.status,
            occurred_at=e.occurred_at,
            step_name=e.step_name,
            attempt=e.attempt,
            span_name=e.span_name,
            message=e.message,
        )
        for e in errors.select_related("run")
        .order_by("-occurred_at", "-id")
        .only(
            "occurred_at",
            "step_name",
            "attempt",
            "span_name",
            "message",
            "run__run_id",
            "run__status",
        )[: DETAIL_EXAMPLE_RUNS * 5]
    ]
    seen: set[str] = set()
    distinct = []
    for example in examples:  # one line per run: its newest occurrence
        if example.run_id not in seen:
            seen.add(example.run_id)
            distinct.append(example)
    sample = (
        errors.order_by("-occurred_at", "-id").only("message", "stacktrace", "source").first()
        or SpanError.objects.filter(fingerprint=fingerprint)
        .order_by("-occurred_at", "-id")
        .only("message", "stacktrace", "source")
        .first()
    )
    return ErrorGroupDetail(
        fingerprint=group.fingerprint,
        type=group.type,
        message=group.message,
        top_frame=group.top_frame,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        occurrences=group.occurrences,
        start=start,
        end=end,
        days=days,
        count=count,
        runs=runs,
        trend=_trends([fingerprint], days)[fingerprint],
        breakdown=breakdown,
        examples=distinct[:DETAIL_EXAMPLE_RUNS],
        sample_message=sample.message if sample else "",
        sample_stacktrace=sample.stacktrace if sample else "",
        sample_source=sample.source if sample else "",
    )
