"""Aggregated usage for the API: token and infrastructure usage per period and chosen dimensions,
from the rollups (hourly for ``hour``, daily otherwise), never from raw events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import F, Sum
from django.db.models.functions import TruncHour, TruncMonth, TruncWeek

from factory_portal.periods import local_date, local_day_start
from factory_portal.tenants.connection import connection_zone
from usage.models import InfraUsageDaily, InfraUsageHourly, LlmUsageDaily, LlmUsageHourly

GRANULARITIES = ("hour", "day", "week", "month")
TOKEN_DIMENSIONS = ("project", "provider", "model", "operation", "run_type", "template")
INFRA_DIMENSIONS = ("project", "resource_type", "unit", "run_type", "template")
DIMENSIONS = tuple(dict.fromkeys(TOKEN_DIMENSIONS + INFRA_DIMENSIONS))
# Longest range per granularity, so one request stays a bounded number of rows.
MAX_RANGE = {
    "hour": timedelta(days=31),
    "day": timedelta(days=366),
    "week": timedelta(days=3 * 366),
    "month": timedelta(days=5 * 366),
}
TRUNC = {"hour": TruncHour, "week": TruncWeek, "month": TruncMonth}


@dataclass(frozen=True)
class UsageQuery:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    granularity: str
    group_by: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]


def _column(dimension: str) -> str:
    return "project__slug" if dimension == "project" else dimension


def _rows(  # type: ignore[no-untyped-def]
    query: UsageQuery,
    hourly: Any,
    daily: Any,
    dimensions: tuple[str, ...],
    sums: dict,
    always: tuple[str, ...] = (),
):
    if query.granularity == "hour":
        rows = hourly.objects.filter(hour__gte=query.start, hour__lt=query.end)
        period = TruncHour("hour", tzinfo=UTC)
    else:
        # Daily rollups are the tenant's days: a partial first or last day counts whole.
        days_zone = connection_zone()
        rows = daily.objects.filter(
            day__gte=local_date(query.start, days_zone), day__lt=_day_after(query.end, days_zone)
        )
        # A day is the rollup's own column (a date: no truncation, no timestamp to parse).
        period = F("day") if query.granularity == "day" else TRUNC[query.granularity]("day")
    for dimension, values in query.filters.items():
        if dimension not in dimensions:
            return []  # this kind has no such dimension: a filter on it matches nothing
        rows = rows.filter(**{f"{_column(dimension)}__in": values})
    group = [d for d in query.group_by if d in dimensions]
    group += [d for d in always if d not in group]
    rows = (
        rows.annotate(period=period, **{f"dim_{d}": F(_column(d)) for d in group})
        .values("period", *[f"dim_{d}" for d in group])
        .annotate(**{name: Sum(field) for name, field in sums.items()})
        .order_by("period", *[f"dim_{d}" for d in group])
    )
    result = []
    zone = connection_zone()
    starts: dict[object, datetime] = {}  # a period's first instant, worked out once per period
    for row in rows:
        at = row["period"]
        start = starts.get(at)
        if start is None:
            local = at if isinstance(at, datetime) else local_day_start(at, zone)
            start = starts[at] = local.astimezone(UTC)
        item = {"period_start": start}
        item.update({d: row[f"dim_{d}"] for d in group})
        item.update({name: row[name] for name in sums})
        result.append(item)
    return result


def _day_after(moment: datetime, zone: ZoneInfo) -> Any:
    """The first of the tenant's days not touched by ``[.., moment)``."""
    day = local_date(moment, zone)
    return day if moment == local_day_start(day, zone) else day + timedelta(days=1)


def token_usage(query: UsageQuery) -> list[dict[str, Any]]:
    return _rows(
        query,
        LlmUsageHourly,
        LlmUsageDaily,
        TOKEN_DIMENSIONS,
        {
            "calls": "calls",
            "unpriced_calls": "unpriced_calls",
            "input_tokens": "input_tokens",
            "output_tokens": "output_tokens",
            "cached_input_tokens": "cached_input_tokens",
            "cache_write_tokens": "cache_write_tokens",
            "cost": "cost",
        },
    )


def infrastructure_usage(query: UsageQuery) -> list[dict[str, Any]]:
    """Infrastructure usage per period and the dimensions asked for, always also per ``unit``:
    quantities of different units (CPU seconds, GB hours) are never added into one number."""
    return _rows(
        query,
        InfraUsageHourly,
        InfraUsageDaily,
        INFRA_DIMENSIONS,
        {"events": "events", "quantity": "quantity"},
        always=("unit",),
    )
