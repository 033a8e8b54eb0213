"""Usage reports: run volume, run types, templates, success rate and execution time trends, and
tokens by model, per day, week or month. Everything is read from the daily rollups (``RunDaily``,
``LlmUsageDaily``), so a report costs a handful of grouped queries whatever the tenant's size.

Periods are the tenant's days (its time zone) grouped into ``day``, ``week`` (starting Monday)
or ``month`` keys. A report can be narrowed to a project, template, run type or model; runs that
called a model are only known to the runs table, so a model filter reads runs from there.

Median and p95 duration are exact (``percentile_cont`` over the finished runs, on the
requested-at index) up to ``EXACT_RUNS`` finished runs in the range, and interpolated inside the
rollup's log-spaced histogram buckets beyond (``usage.domain.durations``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate

from factory_portal.db_routing import read_connection
from factory_portal.money import percent
from factory_portal.periods import local_day_start, period_key
from usage.domain.durations import BUCKETS, percentile_ms
from usage.models import (
    FINISHED_RUN_STATUSES,
    LlmUsageDaily,
    LlmUsageEvent,
    Project,
    Run,
    RunDaily,
    RunStatus,
)
from usage.selectors.histograms import histogram_sum, histogram_sums_by

GRAINS = ("day", "week", "month")
# Exact percentiles read every finished run of the range: measured on a million runs over 30
# days (2 cores shared with other work), 0.24 s for a day's 33,000 runs, 3 s for 7 days' 233,000.
# Beyond this many they are interpolated from the rollup's histograms (a few ms); 10,000 keeps
# the page within 150 ms p95 on the page benchmark's tenant (30 days, about 17,000 runs: exact
# took the page to 180 ms).
EXACT_RUNS = 10_000
NONE_LABEL = "(none)"
# Durations of these statuses make the percentiles (a cancelled run's time says little).
TIMED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
RECENT_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


def success_rate(succeeded: int, finished: int) -> Decimal | None:
    """Succeeded runs as a percentage of finished ones, to one decimal (half-even); None when
    none finished."""
    return percent(succeeded, finished, 1) if finished else None


def status_success_rate(counts: Mapping[str, int]) -> Decimal | None:
    """The success rate of runs counted by status (``{status: runs}``)."""
    return success_rate(
        counts.get(RunStatus.SUCCEEDED, 0), sum(counts.get(s, 0) for s in FINISHED_RUN_STATUSES)
    )


@dataclass(frozen=True)
class UsageFilters:
    """What a report is narrowed to (empty: everything): a project's slug, a template, a run
    type (``(none)`` for runs without one) and a model its runs called."""

    project: str = ""
    template: str = ""
    run_type: str = ""
    model: str = ""

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass
class PeriodRuns:
    """Runs requested in one period, by status, with their merged duration histogram and the
    median and p95 duration of its finished runs (ms)."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    histogram: list[int] = field(default_factory=list)
    p50_ms: int | None = None
    p95_ms: int | None = None

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        return sum(self.by_status[s] for s in FINISHED_RUN_STATUSES)

    @property
    def success_rate(self) -> Decimal | None:
        return success_rate(self.by_status[RunStatus.SUCCEEDED], self.finished)

    def percentile_ms(self, q: float) -> int | None:
        """The ``q`` quantile: exact for 0.5 and 0.95 when the report computed them, else read
        from the histogram."""
        exact = {0.5: self.p50_ms, 0.95: self.p95_ms}.get(q)
        if exact is not None:
            return exact
        return percentile_ms(self.histogram, q) if self.histogram else None


@dataclass(frozen=True)
class TemplateUsage:
    template: str
    runs: int
    succeeded: int
    finished: int
    p50_ms: int | None

    @property
    def success_rate(self) -> Decimal | None:
        return success_rate(self.succeeded, self.finished)


@dataclass(frozen=True)
class UsageReport:
    start: date
    end: date
    grain: str
    periods: dict[str, PeriodRuns]
    run_types: dict[str, int]
    templates: list[TemplateUsage]
    tokens_by_model: dict[str, dict[str, int]]  # model -> period -> input + output tokens
    model_totals: list[tuple[str, int, int, int]]  # model, calls, input, output
    filters: UsageFilters = UsageFilters()
    exact: bool = True  # percentiles from every run (else interpolated in histogram buckets)
    p50_ms: int | None = None  # the whole range's finished runs
    p95_ms: int | None = None

    @property
    def total_runs(self) -> int:
        return sum(p.total for p in self.periods.values())


def usage_report(
    *,
    start: date,
    end: date,
    grain: str,
    zone: ZoneInfo | None = None,
    filters: UsageFilters | None = None,
    top_templates: int = 10,
) -> UsageReport:
    """The usage report for the tenant's days ``start <= day <= end`` (in ``zone``, the
    tenant's; UTC when not given)."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    zone = zone or ZoneInfo("UTC")
    filters = filters or UsageFilters()
    periods: dict[str, PeriodRuns] = {}
    run_types: dict[str, int] = defaultdict(int)
    templates: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, run_type, template, status, runs in _run_counts(start, end, zone, filters):
        period = periods.setdefault(period_key(day, grain), PeriodRuns())
        period.by_status[status] += runs
        run_types[run_type or NONE_LABEL] += runs
        counts = templates[template or NONE_LABEL]
        counts[0] += runs
        if status == RunStatus.SUCCEEDED:
            counts[1] += runs
        if status in FINISHED_RUN_STATUSES:
            counts[2] += runs
    timed = sum(p.by_status[s] for p in periods.values() for s in TIMED_STATUSES)
    exact = timed <= EXACT_RUNS
    overall: dict[float, int | None] = {0.5: None, 0.95: None}
    template_p50: dict[str, int | None] = {}
    if exact:
        by_period, template_p50, overall = _exact_percentiles(start, end, grain, zone, filters)
        for key, (p50, p95) in by_period.items():
            if key in periods:
                periods[key].p50_ms, periods[key].p95_ms = p50, p95
    elif filters.model:
        pass  # the rollup's histograms do not know a run's models: no percentiles this large
    else:
        period_histograms, template_histograms = _finished_histograms(start, end, grain, filters)
        for key, histogram in period_histograms.items():
            periods[key].histogram = histogram
        template_p50 = {
            name: percentile_ms(histogram, 0.5) for name, histogram in template_histograms.items()
        }
        merged = [sum(column) for column in zip(*period_histograms.values(), strict=True)]
        if merged:
            overall = {q: percentile_ms(merged, q) for q in overall}
    top = sorted(templates.items(), key=lambda item: (-item[1][0], item[0]))[:top_templates]
    template_rows = [
        TemplateUsage(
            template=name,
            runs=runs,
            succeeded=succeeded,
            finished=finished,
            p50_ms=template_p50.get(name),
        )
        for name, (runs, succeeded, finished) in top
    ]
    tokens: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    token_rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lte=end, **_rollup_lookups(filters))
        .values_list("day", "model")
        .annotate(
            calls=Sum("calls"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens")
        )
    )
    if filters.model:
        token_rows = token_rows.filter(model=filters.model)
    for day, model, calls, input_tokens, output_tokens in token_rows:
        tokens[model][period_key(day, grain)] += input_tokens + output_tokens
        total = totals[model]
        total[0] += calls
        total[1] += input_tokens
        total[2] += output_tokens
    model_totals = sorted(
        ((model, c, i, o) for model, (c, i, o) in totals.items()), key=lambda t: -(t[2] + t[3])
    )
    return UsageReport(
        start=start,
        end=end,
        grain=grain,
        periods=dict(sorted(periods.items())),
        run_types=dict(sorted(run_types.items(), key=lambda item: -item[1])),
        templates=template_rows,
        tokens_by_model={model: dict(values) for model, values in tokens.items()},
        model_totals=model_totals,
        filters=filters,
        exact=exact,
        p50_ms=overall[0.5],
        p95_ms=overall[0.95],
    )


def _rollup_lookups(filters: UsageFilters) -> dict[str, str]:
    """The run dimensions of ``filters`` as lookups on a daily rollup (blank stored as '')."""
    lookups = {}
    if filters.project:
        lookups["project__slug"] = filters.project
    if filters.template:
        lookups["template"] = "" if filters.template == NONE_LABEL else filters.template
    if filters.run_type:
        lookups["run_type"] = "" if filters.run_type == NONE_LABEL else filters.run_type
    return lookups


def _run_lookups(filters: UsageFilters) -> dict[str, str]:
    """The same filters on the runs table."""
    return {
        {"template": "template_recipe_id"}.get(k.split("__")[0], k): v
        for k, v in _rollup_lookups(filters).items()
    }


def _run_counts(start: date, end: date, zone: ZoneInfo, filters: UsageFilters) -> Any:
    """(day, run type, template, status, runs) rows: from the run rollup, or from the runs that
    called ``filters.model`` (the rollup does not know which models a run called)."""
    if not filters.model:
        return (
            RunDaily.objects.filter(day__gte=start, day__lte=end, **_rollup_lookups(filters))
            .values_list("day", "run_type", "template", "status")
            .annotate(n=Sum("runs"))
        )
    low = local_day_start(start, zone)
    high = local_day_start(end + timedelta(days=1), zone)
    return (
        Run.objects.filter(requested_at__gte=low, requested_at__lt=high, **_run_lookups(filters))
        .filter(Exists(LlmUsageEvent.objects.filter(run=OuterRef("pk"), model=filters.model)))
        .annotate(day=TruncDate("requested_at", tzinfo=zone))
        .values_list("day", "run_type", "template_recipe_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )


PERIOD_SQL = {
    "day": "(r.requested_at AT TIME ZONE %(zone)s)::date",
    "week": "date_trunc('week', r.requested_at AT TIME ZONE %(zone)s)::date",
    "month": "date_trunc('month', r.requested_at AT TIME ZONE %(zone)s)::date",
}


Percentiles = tuple[
    dict[str, tuple[int | None, int | None]], dict[str, int | None], dict[float, int | None]
]


def _exact_percentiles(
    start: date, end: date, grain: str, zone: ZoneInfo, filters: UsageFilters
) -> Percentiles:
    """Median and p95 duration (ms, rounded) of the finished runs requested in the range: per
    period, per template (median) and over the range. One query (grouping sets) on the
    requested-at index."""
    params: dict[str, Any] = {
        "zone": zone.key,
        "low": local_day_start(start, zone),
        "high": local_day_start(end + timedelta(days=1), zone),
        "statuses": list(TIMED_STATUSES),
    }
    where = [
        "r.requested_at >= %(low)s",
        "r.requested_at < %(high)s",
        "r.status = ANY(%(statuses)s)",
        "r.duration_ms IS NOT NULL",
    ]
    if filters.project:
        params["project"] = Project.objects.filter(slug=filters.project).values("pk").first()
        params["project"] = params["project"]["pk"] if params["project"] else None
        where.append("r.project_id = %(project)s")
    for name, column in (("template", "template_recipe_id"), ("run_type", "run_type")):
        value = getattr(filters, name)
        if value:
            params[name] = "" if value == NONE_LABEL else value
            where.append(f"r.{column} = %({name})s")
    if filters.model:
        params["model"] = filters.model
        where.append(
            f"EXISTS (SELECT 1 FROM {LlmUsageEvent._meta.db_table} e"  # noqa: S608 - the model's table
            " WHERE e.run_id = r.id AND e.model = %(model)s)"
        )
    sql = f"""
        SELECT {PERIOD_SQL[grain]} AS period, r.template_recipe_id,
               percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY r.duration_ms),
               GROUPING(r.template_recipe_id)
        FROM {Run._meta.db_table} r
        WHERE {" AND ".join(where)}
        GROUP BY GROUPING SETS ((1), (2), ())
    """  # noqa: S608 - table and column names are the models'; values are parameters
    by_period: dict[str, tuple[int | None, int | None]] = {}
    by_template: dict[str, int | None] = {}
    overall: dict[float, int | None] = {0.5: None, 0.95: None}
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        for period, template, values, no_template in cursor.fetchall():
            if values is None:  # no finished run at all (the empty grouping set's row)
                continue
            p50_ms, p95_ms = (round(v) for v in values)
            if not no_template:
                by_template[template or NONE_LABEL] = p50_ms
            elif period is not None:
                by_period[period_key(period, grain)] = (p50_ms, p95_ms)
            else:
                overall = {0.5: p50_ms, 0.95: p95_ms}
    return by_period, by_template, overall


def range_durations(
    start: date, end: date, zone: ZoneInfo, *, timed: int | None = None
) -> dict[str, int | None]:
    """p50/p95/p99 duration (ms) of the finished runs requested on the tenant's days ``start``
    to ``end`` (inclusive), by the usage report's rule: exact up to ``EXACT_RUNS`` runs, else
    interpolated in the rollup's histograms. The overview interpolated always, so its median
    differed from the usage page's for the same days (a UX review found 22m 47s and 22m 45s).
    ``timed``: how many finished runs those days have, when the caller read it already."""
    if timed is None:
        timed = (
            RunDaily.objects.filter(
                day__gte=start, day__lte=end, status__in=TIMED_STATUSES
            ).aggregate(n=Sum("runs"))["n"]
            or 0
        )
    quantiles = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    if not timed:
        return dict.fromkeys(quantiles)
    if timed > EXACT_RUNS:
        merged = histogram_sum(
            RunDaily.objects.filter(day__gte=start, day__lte=end, status__in=TIMED_STATUSES),
            "duration_histogram",
        )
        return {name: percentile_ms(merged, q) for name, q in quantiles.items()}
    sql = f"""
        SELECT percentile_cont(%(qs)s::float8[]) WITHIN GROUP (ORDER BY duration_ms)
        FROM {Run._meta.db_table}
        WHERE requested_at >= %(low)s AND requested_at < %(high)s
          AND status = ANY(%(statuses)s) AND duration_ms IS NOT NULL
    """  # noqa: S608 - the model's table; values are parameters
    params = {
        "qs": list(quantiles.values()),
        "low": local_day_start(start, zone),
        "high": local_day_start(end + timedelta(days=1), zone),
        "statuses": list(TIMED_STATUSES),
    }
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        (values,) = cursor.fetchone()
    if values is None:
        return dict.fromkeys(quantiles)
    return {name: round(v) for name, v in zip(quantiles, values, strict=True)}


def _finished_histograms(
    start: date, end: date, grain: str, filters: UsageFilters
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Duration histograms of finished runs merged per period and per template, summed in SQL
    per day and per template (``usage.selectors.histograms``); days are merged into weeks or
    months here (at most a few hundred short rows)."""
    rows = RunDaily.objects.filter(
        day__gte=start, day__lte=end, status__in=TIMED_STATUSES, **_rollup_lookups(filters)
    ).exclude(duration_histogram=[])
    per_period: dict[str, list[int]] = {}
    for (day,), histogram in sorted(histogram_sums_by(rows, "duration_histogram", "day").items()):
        key = period_key(day, grain)
        merged = per_period.setdefault(key, [0] * BUCKETS)
        per_period[key] = [a + b for a, b in zip(merged, histogram, strict=True)]
    per_template: dict[str, list[int]] = {}
    for (template,), histogram in histogram_sums_by(rows, "duration_histogram", "template").items():
        name = template or NONE_LABEL
        merged = per_template.setdefault(name, [0] * BUCKETS)
        per_template[name] = [a + b for a, b in zip(merged, histogram, strict=True)]
    return per_period, per_template


def recent_success_rates(*, now: datetime) -> dict[str, Decimal | None]:
    """Success rate of runs that finished in the last hour, 24 hours and 7 days (one query on the
    finished-at index)."""
    since = {name: now - window for name, window in RECENT_WINDOWS.items()}
    aggregates = {}
    for name, moment in since.items():
        window = Q(finished_at__gte=moment)
        aggregates[f"{name}_ok"] = Count("id", filter=window & Q(status=RunStatus.SUCCEEDED))
        aggregates[f"{name}_all"] = Count("id", filter=window)
    counts = Run.objects.filter(
        finished_at__gte=min(since.values()), finished_at__lte=now, status__in=FINISHED_RUN_STATUSES
    ).aggregate(**aggregates)
    return {name: success_rate(counts[f"{name}_ok"], counts[f"{name}_all"]) for name in since}


def usage_filter_choices() -> dict[str, list[str]]:
    """What the report can be narrowed to: projects (slugs), templates and run types that have
    runs (``(none)`` for runs without one), and models that were called. Three queries."""
    pairs = set(RunDaily.objects.values_list("template", "run_type").distinct().order_by())
    models = LlmUsageDaily.objects.values_list("model", flat=True).distinct().order_by()
    return {
        "project": list(Project.objects.order_by("slug").values_list("slug", flat=True)),
        "template": sorted({t or NONE_LABEL for t, _ in pairs}),
        "run_type": sorted({r or NONE_LABEL for _, r in pairs}),
        "model": sorted(set(models)),
    }
