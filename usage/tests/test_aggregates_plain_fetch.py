"""The usage API's rows, read without the ORM's per-value converters, equal the ORM's: every
granularity, grouping and filter, values and types, in a tenant zone that is not UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F, Sum
from django.db.models.functions import TruncHour
from django_tenants.utils import schema_context

from factory_portal.periods import local_date, local_day_start
from factory_portal.tenants.connection import connection_zone
from factory_portal.tenants.services import tenant_timezone_set
from tests.support import llm_event_in
from usage.domain.events import InfraEventIn
from usage.models import InfraUsageDaily, InfraUsageHourly, LlmUsageDaily, LlmUsageHourly
from usage.pricing import pricer_for
from usage.selectors import aggregates
from usage.selectors.aggregates import UsageQuery
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

START = datetime(2026, 9, 28, 3, 30, tzinfo=UTC)  # a Monday night in UTC, Sunday in New York


def _orm_rows(query: UsageQuery, hourly: Any, daily: Any, dimensions, sums, always=()):  # type: ignore[no-untyped-def]
    """The ORM's reading, as ``aggregates._rows`` did it before (the oracle)."""
    if query.granularity == "hour":
        rows = hourly.objects.filter(hour__gte=query.start, hour__lt=query.end)
        period = TruncHour("hour", tzinfo=UTC)
    else:
        zone = connection_zone()
        rows = daily.objects.filter(
            day__gte=local_date(query.start, zone),
            day__lt=aggregates._day_after(query.end, zone),
        )
        period = (
            F("day") if query.granularity == "day" else aggregates.TRUNC[query.granularity]("day")
        )
    for dimension, values in query.filters.items():
        if dimension not in dimensions:
            return []
        rows = rows.filter(**{f"{aggregates._column(dimension)}__in": values})
    group = [d for d in query.group_by if d in dimensions]
    group += [d for d in always if d not in group]
    rows = (
        rows.annotate(period=period, **{f"dim_{d}": F(aggregates._column(d)) for d in group})
        .values("period", *[f"dim_{d}" for d in group])
        .annotate(**{name: Sum(field) for name, field in sums.items()})
        .order_by("period", *[f"dim_{d}" for d in group])
    )
    zone = connection_zone()
    result = []
    for row in rows:
        at = row["period"]
        local = at if isinstance(at, datetime) else local_day_start(at, zone)
        item = {"period_start": local.astimezone(UTC)}
        item.update({d: row[f"dim_{d}"] for d in group})
        item.update({name: row[name] for name in sums})
        result.append(item)
    return result


TOKEN_SUMS = {
    name: name
    for name in (
        "calls",
        "unpriced_calls",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "cost",
    )
}


def _typed(rows: list[dict]) -> list[list[tuple[str, type, object]]]:
    return [[(key, type(value), value) for key, value in row.items()] for row in rows]


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
@pytest.mark.parametrize(
    ("group_by", "filters"),
    [
        ((), {}),
        (("project", "model"), {}),
        (("model",), {"project": ("web",)}),
        (("resource_type", "template"), {"model": ("gpt-4.1",)}),
    ],
)
def test_the_plain_fetch_reads_what_the_orm_read(
    alpha, monkeypatch, granularity, group_by, filters
):
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone="America/New_York")
    with schema_context(alpha.schema):
        events: list[Any] = []
        for n in range(60):
            at = START + timedelta(hours=7 * n)
            events.append(
                llm_event_in(
                    f"p{n}",
                    at,
                    project=("web", "api")[n % 2],
                    model=("gpt-4.1", "gpt-4.1-mini", "unknown-model")[n % 3],
                    input_tokens=1_000 + n,
                    output_tokens=n,
                    cached_input_tokens=n % 7,
                    cost=Decimal("0.0000000001") * n if n % 5 else None,
                )
            )
            events.append(
                InfraEventIn(
                    n,
                    f"i{n}",
                    at,
                    ("web", "api")[n % 2],
                    "",
                    "",
                    "",
                    "compute",
                    Decimal("1.5") * n,
                    ("cpu_seconds", "gb_hours")[n % 2],
                )
            )
        events_ingest(events=events, pricer=pricer_for(alpha.tenant))
        end = START + timedelta(days=25) if granularity == "hour" else START + timedelta(days=40)
        query = UsageQuery(
            start=START - timedelta(hours=5),
            end=end,
            granularity=granularity,
            group_by=group_by,
            filters=filters,
        )
        tokens = aggregates.token_usage(query)
        expected_tokens = _orm_rows(
            query, LlmUsageHourly, LlmUsageDaily, aggregates.TOKEN_DIMENSIONS, TOKEN_SUMS
        )
        infra = aggregates.infrastructure_usage(query)
        expected_infra = _orm_rows(
            query,
            InfraUsageHourly,
            InfraUsageDaily,
            aggregates.INFRA_DIMENSIONS,
            {"events": "events", "quantity": "quantity"},
            always=("unit",),
        )
    assert _typed(tokens) == _typed(expected_tokens)
    assert _typed(infra) == _typed(expected_infra)
    if not filters or "project" in filters:
        assert tokens and all(isinstance(row["calls"], int) for row in tokens)
