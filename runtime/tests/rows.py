"""Metric rows written straight into the runtime tables (the ingest's contract, see
runtime/models.py): a series, its raw points, and the minute and hour rollups computed from them
as ingest keeps them. For tests and the page benchmark only; the schema of the connection."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runtime.models import (
    Heartbeat,
    MetricCategory,
    MetricHour,
    MetricKind,
    MetricMinute,
    MetricPoint,
    MetricSeries,
)


def series_make(name: str, kind: str = MetricKind.GAUGE, **labels: str) -> MetricSeries:
    key = hashlib.sha256(json.dumps([name, kind, labels], sort_keys=True).encode()).hexdigest()
    now = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
    return MetricSeries.objects.create(
        key=key,
        name=name,
        kind=kind,
        category=MetricCategory.RUNTIME,
        monotonic=kind == MetricKind.SUM,
        labels=labels,
        first_seen=now,
        last_seen=now,
    )


@dataclass(frozen=True)
class Hist:
    bounds: Sequence[float]
    counts: Sequence[int]
    sum: float = 0.0
    min: float | None = None
    max: float | None = None


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, tz=moment.tzinfo)


def points_write(
    series: MetricSeries,
    points: Sequence[tuple[datetime, float | Hist]],
    *,
    raw: bool = True,
    rollups: bool = True,
) -> None:
    """Raw points (gauge values, counter increases or histogram increases) and the rollups they
    make; the series' first/last seen follow the points."""
    if not points:
        return
    kind = series.kind
    if raw:
        MetricPoint.objects.bulk_create(
            [_raw(series, at, value) for at, value in points], batch_size=5000
        )
    if rollups:
        for model, step in ((MetricMinute, timedelta(minutes=1)), (MetricHour, timedelta(hours=1))):
            buckets: dict[datetime, list[tuple[datetime, float | Hist]]] = defaultdict(list)
            for at, value in points:
                buckets[_floor(at, step)].append((at, value))
            model.objects.bulk_create(
                [_rollup(model, series, kind, start, rows) for start, rows in buckets.items()],
                batch_size=5000,
            )
    times = [at for at, _ in points]
    MetricSeries.objects.filter(pk=series.pk).update(
        first_seen=min(min(times), series.first_seen)
        if series.first_seen.year > 2000
        else min(times),
        last_seen=max(max(times), series.last_seen),
    )
    series.refresh_from_db()


def _raw(series: MetricSeries, at: datetime, value: float | Hist) -> MetricPoint:
    if isinstance(value, Hist):
        return MetricPoint(
            series=series,
            time=at,
            count=sum(value.counts),
            sum=value.sum,
            min=value.min,
            max=value.max,
            bounds=list(value.bounds),
            bucket_counts=list(value.counts),
        )
    return MetricPoint(series=series, time=at, value=value)


def _rollup(
    model: Any, series: MetricSeries, kind: str, start: datetime, rows: list[tuple[datetime, Any]]
) -> Any:
    rows.sort(key=lambda r: r[0])
    if kind == MetricKind.HISTOGRAM:
        hists: list[Hist] = [v for _, v in rows]
        counts = [sum(h.counts[i] for h in hists) for i in range(len(hists[0].counts))]
        mins = [h.min for h in hists if h.min is not None]
        maxs = [h.max for h in hists if h.max is not None]
        return model(
            series=series,
            start=start,
            samples=len(rows),
            count=sum(counts),
            sum=sum(h.sum for h in hists),
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            bounds=list(hists[0].bounds),
            bucket_counts=counts,
        )
    values = [float(v) for _, v in rows]
    if kind == MetricKind.SUM:
        return model(series=series, start=start, samples=len(rows), increase=sum(values))
    return model(
        series=series,
        start=start,
        samples=len(values),
        min=min(values),
        max=max(values),
        total=sum(values),
        last=values[-1],
        last_time=rows[-1][0],
    )


def heartbeat_make(service: str, last_seen: datetime, instance: str = "i-1") -> Heartbeat:
    return Heartbeat.objects.create(
        service=service,
        instance=instance,
        signal="metrics",
        first_seen=last_seen - timedelta(hours=1),
        last_seen=last_seen,
    )
