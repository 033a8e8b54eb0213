"""Steps and stages: where pipelines fail and rework most, per step name or per template and
step, for a range of the tenant's days against the previous range of equal length; and run lead
time (requested -> finished) percentiles.

Read from the step rollup (``StepDaily``: (run, step) pairs by the run's local day requested)
and the run rollup's lead-time histograms (``RunDaily``), never from jobs or calls: a range costs
three grouped queries whatever the tenant's size. Percentiles are interpolated inside their
histogram bucket (``usage.domain.durations``). Rates are exact ``Decimal`` fractions (0..1) and
AI cost is ``Decimal`` USD as stored (10 places): callers round once, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from factory_portal.db_routing import read_connection
from usage.domain import durations
from usage.domain.durations import percentile_ms
from usage.domain.steps import StepFigures
from usage.models import RunStatus

GROUPINGS = ("step", "template")  # by step name, or by template and step name
# Sort keys: each lists the worst first (highest rework, failure, p95, cost, runs; lowest
# first-pass success).
SORTS = {
    "rework_rate": True,
    "failure_rate": True,
    "first_pass_rate": False,
    "p95_ms": True,
    "ai_cost": True,
    "runs": True,
}
TOP_FAILURE_TYPES = 3
LEAD_TIME_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}


@dataclass(frozen=True)
class StepPeriod:
    """One step's (or template and step's) figures over a range of days."""

    runs: int  # (run, step) pairs: runs that ran the step
    attempts: int
    retries: int
    first_pass_rate: Decimal | None  # of settled pairs: all first attempts succeeded
    rework_rate: Decimal | None  # of pairs: some job needed more than one attempt
    failure_rate: Decimal | None  # of finished attempts: failed
    p50_ms: int | None  # job (attempt) duration
    p95_ms: int | None
    failure_types: list[tuple[str, int]]  # the most frequent, most first
    calls: int
    ai_cost: Decimal  # USD, unrounded

    @property
    def ai_cost_per_run(self) -> Decimal | None:
        return self.ai_cost / self.runs if self.runs else None


# Figures with a trend, and whether a rise is for the worse.
TREND_METRICS = {
    "runs": None,
    "first_pass_rate": False,
    "rework_rate": True,
    "failure_rate": True,
    "p95_ms": True,
    "ai_cost": True,
}


@dataclass(frozen=True)
class Trend:
    direction: str  # up | down | flat
    worse: bool | None  # None when neither direction is better
    previous: Decimal | int
    current: Decimal | int | None = None


def trend(
    current: Decimal | int | None, previous: Decimal | int | None, rise_is_worse: bool | None
) -> Trend | None:
    """How ``current`` moved from ``previous``; None when either is unknown."""
    if current is None or previous is None:
        return None
    if current == previous:
        return Trend("flat", False if rise_is_worse is not None else None, previous, current)
    up = current > previous
    worse = None if rise_is_worse is None else up == rise_is_worse
    return Trend("up" if up else "down", worse, previous, current)


@dataclass(frozen=True)
class StepRow:
    template: str | None  # None when grouped by step only
    step: str
    current: StepPeriod
    previous: StepPeriod | None  # None when the step did not run in the previous range

    def sort_value(self, key: str) -> Decimal | int | None:
        return getattr(self.current, key)

    @property
    def trends(self) -> dict[str, Trend | None]:
        """Each figure of ``TREND_METRICS`` against the previous range of equal length."""
        return {
            name: trend(
                getattr(self.current, name),
                getattr(self.previous, name) if self.previous else None,
                worse,
            )
            for name, worse in TREND_METRICS.items()
        }


@dataclass(frozen=True)
class StepReport:
    start: date
    end: date  # inclusive
    previous_start: date
    previous_end: date
    grouping: str
    rows: list[StepRow]
    lead_time: dict[str, int | None]  # p50/p90/p95 ms of runs succeeded, requested in range
    previous_lead_time: dict[str, int | None]
    succeeded_runs: int
    total: StepPeriod | None = None  # every step together


PRESET_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366


class RangeError(ValueError):
    """A range of days the step figures cannot be asked for, in words for the person asking."""


def step_range(
    *, today: date, days: int | None = None, start: date | None = None, end: date | None = None
) -> tuple[date, date]:
    """The inclusive days asked for: ``start``..``end`` when given (``end`` defaults to
    ``today``), else the last ``days`` days up to ``today`` (30 by default).
    ``RangeError`` when the range is reversed or longer than ``MAX_DAYS``."""
    if start is None and end is None:
        days = DEFAULT_DAYS if days is None else days
        if not 1 <= days <= MAX_DAYS:
            raise RangeError(f"days must be between 1 and {MAX_DAYS}.")
        return today - timedelta(days=days - 1), today
    end = end or today
    start = start or end - timedelta(days=(days or DEFAULT_DAYS) - 1)
    if start > end:
        raise RangeError("The start date is after the end date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise RangeError(f"A range covers at most {MAX_DAYS} days.")
    return start, end


def previous_range(start: date, end: date) -> tuple[date, date]:
    """The range of equal length just before ``start..end`` (inclusive days)."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def _ratio(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


def _period(figures: StepFigures) -> StepPeriod:
    ranked = sorted(figures.failure_types.items(), key=lambda item: (-item[1], item[0]))
    return StepPeriod(
        runs=figures.runs,
        attempts=figures.attempts,
        retries=figures.retries,
        first_pass_rate=_ratio(figures.first_pass, figures.settled),
        rework_rate=_ratio(figures.reworked, figures.runs),
        failure_rate=_ratio(figures.failed_attempts, figures.finished_attempts),
        p50_ms=percentile_ms(figures.histogram, 0.5),
        p95_ms=percentile_ms(figures.histogram, 0.95),
        failure_types=ranked[:TOP_FAILURE_TYPES],
        calls=figures.calls,
        ai_cost=figures.cost,
    )


# Figures per (current range?, template or '', step) summed in the database: counters with
# the merged duration histogram (a sum per bucket: far cheaper than unnesting every row's array),
# and failure types. Fixed SQL; {template} is one of two column expressions, never input.
# A key's figures are the sum of its rows, one per stripe written (``StepDaily.stripe``): keys
# are kept when their runs add up to more than none, whatever a single stripe's row holds.
_WHERE = (
    "WHERE s.day >= %(first)s AND s.day <= %(end)s"
    " AND (%(template)s = '' OR s.template = %(template)s)"
    " AND (s.day, s.template, s.step_name) IN (SELECT k.day, k.template, k.step_name"
    " FROM usage_stepdaily k WHERE k.day >= %(first)s AND k.day <= %(end)s"
    " GROUP BY 1, 2, 3 HAVING sum(k.runs) > 0)"
)
_KEYS = "(s.day >= %(start)s), {template}, s.step_name"
_BUCKET_SUMS = ", ".join(
    f"coalesce(sum(s.{{column}}[{i + 1}]::int), 0)" for i in range(durations.BUCKETS)
)
_COUNTERS = (
    f"SELECT {_KEYS}, "  # noqa: S608 - fixed SQL (column names and two template expressions)
    + ", ".join(f"sum(s.{name})" for name in (*StepFigures.COUNTS, "cost"))
    + f", {_BUCKET_SUMS.format(column='duration_histogram')}"
    + f" FROM usage_stepdaily s {_WHERE} GROUP BY 1, 2, 3"
)
_FAILURES = (
    f"SELECT {_KEYS}, f.key, sum(f.value::bigint) FROM usage_stepdaily s"  # noqa: S608
    " CROSS JOIN LATERAL jsonb_each_text(s.failure_types) AS f(key, value)"
    f" {_WHERE} GROUP BY 1, 2, 3, 4 HAVING sum(f.value::bigint) <> 0"
)
_LEAD_TIMES = (
    "SELECT (s.day >= %(start)s), sum(s.runs), "  # noqa: S608 - fixed SQL
    f"{_BUCKET_SUMS.format(column='lead_time_histogram')} FROM usage_rundaily s"
    " WHERE s.day >= %(first)s AND s.day <= %(end)s AND s.status = %(status)s"
    " AND (%(template)s = '' OR s.template = %(template)s) GROUP BY 1"
)

Key = tuple[bool, str | None, str]  # in the current range, template (None: all), step


def _grouped(
    *, start: date, end: date, first: date, grouping: str, template: str
) -> dict[Key, StepFigures]:
    column = "s.template" if grouping == "template" else "''"
    params = {"start": start, "end": end, "first": first, "template": template}
    figures: dict[Key, StepFigures] = {}

    def key(current: bool, group: str, step: str) -> Key:
        return (current, group if grouping == "template" else None, step)

    counters = len(StepFigures.COUNTS)
    with read_connection().cursor() as cursor:
        cursor.execute(_COUNTERS.format(template=column), params)
        for current, group, step, *sums in cursor.fetchall():
            counts = dict(zip(StepFigures.COUNTS, map(int, sums[:counters]), strict=True))
            figures[key(current, group, step)] = StepFigures(
                **counts, cost=sums[counters], histogram=list(sums[counters + 1 :])
            )
        cursor.execute(_FAILURES.format(template=column), params)
        for current, group, step, kind, n in cursor.fetchall():
            if (found := figures.get(key(current, group, step))) is not None:
                found.failure_types[kind] = int(n)
    return figures


def step_report(
    *, start: date, end: date, grouping: str = "step", sort: str = "rework_rate", template: str = ""
) -> StepReport:
    """Steps of runs requested on the tenant's days ``start <= day <= end`` (optionally of one
    template), grouped by ``grouping`` and sorted by ``sort`` (worst first; ties by name), each
    with the same figures for the previous range of equal length."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    previous_start, previous_end = previous_range(start, end)
    grouped = _grouped(
        start=start, end=end, first=previous_start, grouping=grouping, template=template
    )
    current: dict[tuple[str | None, str], StepFigures] = {}
    previous: dict[tuple[str | None, str], StepFigures] = {}
    total = StepFigures()
    for (in_range, group, step), figures in grouped.items():
        if in_range:
            current[(group, step)] = figures
            total.add(figures)
        else:
            previous[(group, step)] = figures
    result = [
        StepRow(
            template=key[0],
            step=key[1],
            current=_period(figures),
            previous=_period(previous[key]) if previous.get(key) else None,
        )
        for key, figures in current.items()
    ]
    descending = SORTS[sort]
    result.sort(key=lambda r: (r.template or "", r.step))
    present = [r for r in result if r.sort_value(sort) is not None]
    absent = [r for r in result if r.sort_value(sort) is None]
    present.sort(key=lambda r: r.sort_value(sort), reverse=descending)  # type: ignore[arg-type,return-value]
    lead, previous_lead, succeeded = _lead_times(start, end, previous_start, template)
    return StepReport(
        start=start,
        end=end,
        previous_start=previous_start,
        previous_end=previous_end,
        grouping=grouping,
        rows=present + absent,
        lead_time=lead,
        previous_lead_time=previous_lead,
        succeeded_runs=succeeded,
        total=_period(total) if total.runs else None,
    )


def _lead_times(
    start: date, end: date, previous_start: date, template: str
) -> tuple[dict[str, int | None], dict[str, int | None], int]:
    """Lead-time percentiles of runs that succeeded, requested in the range and in the previous
    range, and how many runs the current figures describe."""
    params = {
        "start": start,
        "end": end,
        "first": previous_start,
        "template": template,
        "status": RunStatus.SUCCEEDED,
    }
    histograms: dict[bool, list[int]] = {}
    succeeded = 0
    with read_connection().cursor() as cursor:
        cursor.execute(_LEAD_TIMES, params)
        for current, runs, *buckets in cursor.fetchall():
            histograms[current] = buckets
            if current:
                succeeded = int(runs)

    def quantiles(histogram: list[int]) -> dict[str, int | None]:
        return {name: percentile_ms(histogram, q) for name, q in LEAD_TIME_QUANTILES.items()}

    return quantiles(histograms.get(True, [])), quantiles(histograms.get(False, [])), succeeded
