"""Read paths over the runtime metrics of the connection's schema (a tenant's series in its
schema, the platform's in public): series by name and labels over a time window, latest gauge
values, counter increases as rates, histogram percentiles over time, breakdowns by a label, and
heartbeats. Read only; every query is bounded by the window and ``SERIES_LIMIT`` series.

A window's stored resolution follows ``runtime.domain.ranges`` (raw points, 1-minute or 1-hour
rollups). Gauges are averaged per series and bucket (avg = sum of values / samples) and then
added (or averaged) across the series of a group; counters are summed increases; histograms are
merged bucket counts, read with ``runtime.domain.percentiles``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import Max, Q

from factory_portal.db_routing import read_connection
from runtime.domain.percentiles import Histogram, histogram_make, histograms_merge, percentile
from runtime.domain.ranges import Resolution, Window
from runtime.models import (
    Heartbeat,
    MetricHour,
    MetricKind,
    MetricMinute,
    MetricPoint,
    MetricSeries,
)

SERIES_LIMIT = 500  # series of one name read by one chart (the most recently seen)
NONE_LABEL = "(none)"
HEARTBEAT_LIMIT = 200

_TABLES = {
    Resolution.RAW: (MetricPoint._meta.db_table, "time"),
    Resolution.MINUTE: (MetricMinute._meta.db_table, "start"),
    Resolution.HOUR: (MetricHour._meta.db_table, "start"),
}


@dataclass(frozen=True)
class Series:
    id: int
    name: str
    labels: dict[str, Any]
    kind: str = "gauge"

    def label(self, key: str | None) -> str:
        if key is None:
            return self.name
        value = self.labels.get(key)
        return NONE_LABEL if value in (None, "") else str(value)


@dataclass(frozen=True)
class Trend:
    """Values per bucket start, one line per group (a label's value, or the series' name)."""

    buckets: list[datetime]
    lines: dict[str, list[float | None]]

    @property
    def empty(self) -> bool:
        return not any(v is not None for line in self.lines.values() for v in line)


def _matches(labels: Mapping[str, Any], wanted: Mapping[str, str] | None) -> bool:
    return not wanted or all(str(labels.get(k, "")) == v for k, v in wanted.items())


def series_select(
    names: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Series]:
    """Series of these instruments whose labels include ``labels``, seen in [since, until)."""
    query = Q(name__in=list(names))
    if since is not None:
        query &= Q(last_seen__gte=since)
    if until is not None:
        query &= Q(first_seen__lt=until)
    if labels:
        query &= Q(labels__contains=dict(labels))
    rows = (
        MetricSeries.objects.filter(query)
        .order_by("-last_seen")
        .values_list("id", "name", "labels", "kind")[: SERIES_LIMIT * max(len(names), 1)]
    )
    return [Series(id=i, name=n, labels=lbl or {}, kind=k) for i, n, lbl, k in rows]


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _params(window: Window, series: Iterable[Series]) -> dict[str, Any]:
    return {
        "ids": [s.id for s in series],
        "step": window.step,
        "origin": window.start,
        "start": window.start,
        "end": window.end,
    }


def _trend(
    window: Window,
    series: list[Series],
    *,
    by: str | None,
    per_series: str,
    combine: Literal["sum", "mean"],
) -> Trend:
    """One query: ``per_series`` (an aggregate over one series' rows in a bucket) per series and
    bucket, then added or averaged across the series of each group (a label's value), in SQL.
    Buckets come back as their index (integers parse faster than timestamps)."""
    table, column = _TABLES[window.resolution]
    params = _params(window, series)
    params.update(groups=[s.label(by) for s in series], step_s=window.step.total_seconds())
    rows = _fetch(
        f"""
        SELECT grp, (extract(epoch from b - %(origin)s) / %(step_s)s)::int,
               {"sum" if combine == "sum" else "avg"}(v)
        FROM (
            SELECT g.grp, date_bin(%(step)s, m.{column}, %(origin)s) AS b, {per_series} AS v
            FROM {table} m
            JOIN unnest(%(ids)s::bigint[], %(groups)s::text[]) AS g(id, grp) ON g.id = m.series_id
            WHERE m.series_id = ANY(%(ids)s) AND m.{column} >= %(start)s
              AND m.{column} < %(end)s
            GROUP BY m.series_id, g.grp, b
        ) per_series
        WHERE v IS NOT NULL
        GROUP BY grp, b
        """,  # noqa: S608 - table, column and aggregate are this module's; values are parameters
        params,
    )
    size = len(window.buckets)
    lines: dict[str, list[float | None]] = {}
    for group, bucket, value in rows:
        if 0 <= bucket < size:
            lines.setdefault(group, [None] * size)[bucket] = float(value)
    return Trend(window.buckets, dict(sorted(lines.items())))


def gauge_trend(
    name: str,
    window: Window,
    *,
    by: str | None = None,
    labels: Mapping[str, str] | None = None,
    combine: Literal["sum", "mean"] = "sum",
) -> Trend:
    """A gauge's average per bucket, by the value of label ``by``: the series of a group are
    added (depths, jobs) or averaged (``combine="mean"``: CPU, memory per worker)."""
    series = series_select([name], labels=labels, since=window.start, until=window.end)
    if not series:
        return Trend(window.buckets, {})
    if all(s.kind == MetricKind.SUM for s in series):
        # A level sent as an up-down counter: the values it reports, not their changes (the
        # queue-depth rule read 2 for a queue of 42; a review found it).
        average = "avg(m.total)" if window.resolution is Resolution.RAW else "avg(m.last)"
    elif window.resolution is Resolution.RAW:
        average = "avg(m.value)"
    else:
        average = "sum(m.total) / nullif(sum(m.samples), 0)"
    return _trend(window, series, by=by, per_series=average, combine=combine)


def rate_trend(
    name: str,
    window: Window,
    *,
    by: str | None = None,
    labels: Mapping[str, str] | None = None,
    per: timedelta = timedelta(seconds=1),
) -> Trend:
    """A counter's rate per ``per`` in each bucket (its increase over the bucket's length), by
    the value of label ``by``."""
    series = series_select([name], labels=labels, since=window.start, until=window.end)
    if not series:
        return Trend(window.buckets, {})
    increase = "m.value" if window.resolution is Resolution.RAW else "m.increase"
    scale = float(per / window.step)
    return _trend(window, series, by=by, per_series=f"sum({increase}) * {scale!r}", combine="sum")


def level_trend(
    name: str,
    window: Window,
    *,
    by: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Trend:
    """A per-series level averaged across each group's series (per worker, by pool): a gauge's
    average, or, for an instrument sent as a counter (``worker_cpu_usage`` in CPU seconds, as the
    seed lists it), its rate per second (CPU cores busy)."""
    series = series_select([name], labels=labels, since=window.start, until=window.end)
    if not series:
        return Trend(window.buckets, {})
    if any(s.kind != MetricKind.SUM for s in series):
        return gauge_trend(name, window, by=by, labels=labels, combine="mean")
    increase = "m.value" if window.resolution is Resolution.RAW else "m.increase"
    scale = 1 / window.step.total_seconds()
    return _trend(window, series, by=by, per_series=f"sum({increase}) * {scale!r}", combine="mean")


def latest_levels(
    name: str, *, by: str | None, since: datetime, now: datetime
) -> dict[str, Latest]:
    """Each group's level now, averaged across its series: the newest gauge values since
    ``since``, or for a counter its rate per second over [since, now) (see ``level_trend``)."""
    series = series_select([name], since=since)
    if not series:
        return {}
    if any(s.kind != MetricKind.SUM for s in series):
        return latest_gauges(name, by=by, since=since, combine="mean")
    seconds = max((now - since).total_seconds(), 1.0)
    totals = increases(name, start=since, end=now, by=by)
    counts: dict[str, int] = defaultdict(int)
    for s in series:
        counts[s.label(by)] += 1
    return {group: Latest(total / seconds / counts[group], now) for group, total in totals.items()}


HISTOGRAM_BUCKETS_MAX = 160  # buckets summed per histogram (OTLP's default has 16)


def _histogram_rows(series: list[Series], window: Window) -> dict[datetime, list[Histogram]]:
    """Merged histograms per bucket (one per distinct set of bounds): bucket counts summed
    element by element in SQL (``sum(bucket_counts[i])`` for each position, no unnesting)."""
    table, column = _TABLES[window.resolution]
    params = _params(window, series)
    where = (
        f"series_id = ANY(%(ids)s) AND {column} >= %(start)s AND {column} < %(end)s"
        " AND bucket_counts IS NOT NULL"
    )
    [(width,)] = _fetch(
        f"SELECT max(cardinality(bucket_counts)) FROM {table} WHERE {where}",  # noqa: S608
        params,
    )
    if not width:
        return {}
    width = min(int(width), HISTOGRAM_BUCKETS_MAX)
    sums = ", ".join(f"sum(bucket_counts[{i}]::float8)" for i in range(1, width + 1))
    rows = _fetch(
        f"""
        SELECT date_bin(%(step)s, {column}, %(origin)s), bounds, min(min), max(max),
               bool_and(min IS NOT NULL AND max IS NOT NULL), {sums}
        FROM {table}
        WHERE {where}
        GROUP BY 1, 2
        """,  # noqa: S608 - table and column names are the models'; values are parameters
        params,
    )
    out: dict[datetime, list[Histogram]] = defaultdict(list)
    for bucket, bounds, lo, hi, known, *counts in rows:
        out[bucket].append(
            histogram_make(
                bounds or [],
                [int(c or 0) for c in counts],
                min=lo if known else None,
                max=hi if known else None,
            )
        )
    return out


def percentile_trend(
    name: str,
    window: Window,
    *,
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
    labels: Mapping[str, str] | None = None,
    scale: float = 1.0,
) -> Trend:
    """Percentiles of a histogram per bucket (all its series with ``labels`` merged), each
    multiplied by ``scale`` (seconds to minutes, say); lines named ``p50``, ``p95``…"""
    series = series_select([name], labels=labels, since=window.start, until=window.end)
    lines: dict[str, list[float | None]] = {f"p{round(q * 100)}": [] for q in quantiles}
    if not series:
        return Trend(window.buckets, {})
    merged = _histogram_rows(series, window)
    for bucket in window.buckets:
        histogram = histograms_merge(merged.get(bucket, []))
        for q in quantiles:
            value = percentile(histogram, q) if histogram else None
            lines[f"p{round(q * 100)}"].append(None if value is None else value * scale)
    return Trend(window.buckets, lines)


def increases(
    name: str,
    *,
    start: datetime,
    end: datetime,
    by: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """A counter's total increase over [start, end) by the value of label ``by`` (raw points:
    meant for the last minutes, as health reads them)."""
    series = series_select([name], labels=labels, since=start, until=end)
    if not series:
        return {}
    kinds = _fetch(
        f"""
        SELECT series_id, sum(coalesce(value, count)) FROM {MetricPoint._meta.db_table}
        WHERE series_id = ANY(%(ids)s) AND time >= %(start)s AND time < %(end)s
        GROUP BY 1
        """,  # noqa: S608
        {"ids": [s.id for s in series], "start": start, "end": end},
    )
    by_id = {s.id: s for s in series}
    totals: dict[str, float] = defaultdict(float)
    for series_id, value in kinds:
        if value is not None:
            totals[by_id[series_id].label(by)] += float(value)
    return dict(totals)


@dataclass(frozen=True)
class Latest:
    value: float
    time: datetime  # the newest of the group's points


def latest_gauges(
    name: str,
    *,
    by: str | None,
    since: datetime,
    labels: Mapping[str, str] | None = None,
    combine: Literal["sum", "mean"] = "sum",
) -> dict[str, Latest]:
    """Each series' newest raw value since ``since``, added up (or averaged) by the value of
    label ``by``; a series silent since then counts for nothing. A level sent as an up-down
    counter (a sum) is its reported value, not the change since its previous point (a review
    found a queue of 42 shown as 2, and a negative one)."""
    series = series_select([name], labels=labels, since=since)
    if not series:
        return {}
    rows = _fetch(
        f"""
        SELECT DISTINCT ON (series_id) series_id, time, value, total
        FROM {MetricPoint._meta.db_table}
        WHERE series_id = ANY(%(ids)s) AND time >= %(since)s
          AND (value IS NOT NULL OR total IS NOT NULL)
        ORDER BY series_id, time DESC
        """,  # noqa: S608
        {"ids": [s.id for s in series], "since": since},
    )
    by_id = {s.id: s for s in series}
    values: dict[str, list[float]] = defaultdict(list)
    times: dict[str, datetime] = {}
    for series_id, time, increase, reported in rows:
        value = reported if by_id[series_id].kind == MetricKind.SUM else increase
        if value is None:
            continue
        group = by_id[series_id].label(by)
        values[group].append(value)
        times[group] = max(times.get(group, time), time)
    return {
        group: Latest(
            sum(values[group]) / (len(values[group]) if combine == "mean" else 1), times[group]
        )
        for group in sorted(values)
    }


def last_reported(names: Sequence[str]) -> datetime | None:
    """When any of these instruments last reported a point."""
    seen: datetime | None = MetricSeries.objects.filter(name__in=list(names)).aggregate(
        t=Max("last_seen")
    )["t"]
    return seen


@dataclass(frozen=True)
class HeartbeatRow:
    service: str
    instance: str
    signal: str
    first_seen: datetime
    last_seen: datetime


def heartbeats() -> list[HeartbeatRow]:
    """The parts of the factory that reported, most recent first (at most ``HEARTBEAT_LIMIT``)."""
    rows = Heartbeat.objects.order_by("-last_seen").values_list(
        "service", "instance", "signal", "first_seen", "last_seen"
    )[:HEARTBEAT_LIMIT]
    return [HeartbeatRow(*row) for row in rows]
